/// Writes the Prometheus text exposition format (version 0.0.4).
///
/// Metric families are written with their `# HELP` and `# TYPE` lines; label values are
/// escaped as the format requires. Herald renders its own exposition because all of its
/// figures live on the loop thread as plain integers: a scrape reads them in one pass.
public struct PrometheusText {
    public private(set) var output: [UInt8] = []

    public init() { output.reserveCapacity(16 * 1024) }

    public var text: String { String(decoding: output, as: UTF8.self) }

    /// Starts a family: `# HELP` and `# TYPE`.
    public mutating func family(_ name: String, type: String, help: String) {
        append("# HELP \(name) \(help)\n# TYPE \(name) \(type)\n")
    }

    /// One sample line.
    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        append(name)
        appendLabels(labels)
        append(" ")
        appendValue(value)
        append("\n")
    }

    /// A family with one sample per transport (`transport` label).
    public mutating func perTransport(_ name: String, type: String, help: String, _ values: PerTransport<UInt64>) {
        family(name, type: type, help: help)
        for kind in TransportKind.allCases { sample(name, [("transport", kind.name)], Double(values[kind])) }
    }

    /// A whole histogram: cumulative `_bucket` lines with `le`, then `_sum` and `_count`.
    public mutating func histogram(_ name: String, _ labels: [(String, String)] = [], _ histogram: Histogram) {
        var cumulative: UInt64 = 0
        for (index, bound) in histogram.bounds.enumerated() {
            cumulative += histogram.counts[index]
            sample(name + "_bucket", labels + [("le", Self.format(bound))], Double(cumulative))
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], Double(histogram.count))
        sample(name + "_sum", labels, histogram.sum)
        sample(name + "_count", labels, Double(histogram.count))
    }

    private mutating func append(_ text: String) { output.append(contentsOf: text.utf8) }

    private mutating func appendLabels(_ labels: [(String, String)]) {
        guard !labels.isEmpty else { return }
        append("{")
        for (index, (key, value)) in labels.enumerated() {
            if index > 0 { append(",") }
            append(key)
            append("=\"")
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): append("\\\\")
                case UInt8(ascii: "\""): append("\\\"")
                case 0x0A: append("\\n")
                default: output.append(byte)
                }
            }
            append("\"")
        }
        append("}")
    }

    private mutating func appendValue(_ value: Double) { append(Self.format(value)) }

    /// A number as Prometheus reads it: integers without a fraction.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
