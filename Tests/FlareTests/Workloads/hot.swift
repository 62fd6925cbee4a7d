// A Swift program with one known hot function: hotLoop takes three quarters of
// the CPU, coolLoop one quarter. Built with -Onone, so both keep their frames;
// the loops use only transparent integer operations, so no time leaks into the
// standard library.

@inline(never)
func hotLoop(_ n: Int, _ seed: Int) -> Int {
    var x = seed
    var i = 0
    while i < n {
        x = x &* 6364136223846793005 &+ i
        i &+= 1
    }
    return x
}

@inline(never)
func coolLoop(_ n: Int, _ seed: Int) -> Int {
    var x = seed
    var i = 0
    while i < n {
        x = x &* 3935559000370003845 &+ i
        i &+= 1
    }
    return x
}

let rounds = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1000 : 1000
var acc = CommandLine.arguments.count
for _ in 0..<rounds {
    acc = hotLoop(300_000, acc)
    acc = coolLoop(100_000, acc)
}
print(acc & 1)
