/// The ways a subscriber is connected (DESIGN §4): a closed set, so every switch over it
/// names each transport and metrics per transport follow from it.
public enum TransportKind: String, Sendable, CaseIterable {
    case webSocket = "ws"
    case sse

    /// The label used in metrics, `/v1/clients` and presence (`ws`, `sse`).
    public var name: String { rawValue }

    /// Position in `allCases` (for per-transport tables).
    public var index: Int {
        switch self {
        case .webSocket: 0
        case .sse: 1
        }
    }
}
