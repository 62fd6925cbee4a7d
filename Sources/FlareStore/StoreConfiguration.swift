import FlareSymbols
import FlareViewer

/// Everything `flare store` can be told; the defaults run a local store with
/// nothing to install.
public struct StoreConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 4100
    /// The SQLite data directory (unused with a database URL).
    public var dataDirectory: String
    /// `postgres://…`: use PostgreSQL instead of SQLite.
    public var databaseURL: String?
    /// Windows and spans older than this are deleted.
    public var retentionNanos: Int64 = 7 * 86_400 * 1_000_000_000
    /// Windows older than this are merged into `downsampleResolutionNanos` buckets; 0 turns it off.
    public var downsampleAfterNanos: Int64 = 86_400 * 1_000_000_000
    public var downsampleResolutionNanos: Int64 = 60 * 1_000_000_000
    /// Largest request body accepted, compressed.
    public var maxBodyBytes = 16 << 20
    /// Largest profile accepted after decompression (a gzip bomb stops here).
    public var maxDecompressedBytes = 128 << 20
    /// Largest debug file accepted by `POST /api/v1/debuginfo/BUILD_ID`.
    public var maxDebugInfoBytes = 512 << 20
    /// debuginfod servers asked for the debug files of functions stored unnamed; nil: none.
    public var debuginfod: DebuginfodFetcher.Settings?
    /// When set, ingest requests must send `Authorization: Bearer TOKEN`.
    public var ingestToken: String?
    /// When set, query requests must send `Authorization: Bearer TOKEN`.
    public var queryToken: String?
    /// How often retention and downsampling run.
    public var maintenanceIntervalSeconds: Int = 300
    /// The viewer's files, served at `/` and `/ui/…`; nil: no viewer (the API still works).
    public var viewer: ViewerAssets?
    /// Where the viewer links a trace to, with `{trace_id}` (and `{span_id}`)
    /// substituted: a Jaeger or Grafana Tempo URL.
    public var traceURLTemplate: String?

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }

    /// The default data directory: /var/lib/flare for root, else ~/.local/share/flare.
    public static func defaultDataDirectory(environment: [String: String], isRoot: Bool) -> String {
        if let dir = environment["FLARE_DATA_DIR"], !dir.isEmpty { return dir }
        if isRoot { return "/var/lib/flare" }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/flare" }
        return (environment["HOME"] ?? ".") + "/.local/share/flare"
    }
}
