// Declarations only; the symbols come from libstdc++ and libswiftCore.
