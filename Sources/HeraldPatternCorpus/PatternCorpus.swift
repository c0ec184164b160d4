public import HeraldCore

/// A seeded corpus of realistic events — IoT readings shaped like
/// shared/examples/vibration-recorded.json, GeoJSON features and chat messages, in turn —
/// and patterns of every operator family.
///
/// One definition serves the corpus test (which checks the automaton's counts against a
/// reference matcher and the counts recorded here) and the corpus benchmarks (events/s per
/// family), so the numbers of both always describe the same events.
public enum PatternCorpus {
    /// (family, pattern, matches among the first 200,000 events of the corpus).
    public static let patterns: [(family: String, pattern: String, expected: Int)] = [
        ("exact", #"{"eventType":["VibrationRecorded"]}"#, 26772),
        ("exact", #"{"data":{"sensorId":["VB-00042"]}}"#, 31),
        ("exact", #"{"type":["Feature"],"properties":{"category":["park"]}}"#, 16741),
        ("exact", #"{"room":["lobby","ops"],"from":{"name":["ada"]}}"#, 2798),
        ("exact", #"{"data":{"baselineVibrationLevel":[4]}}"#, 16731),
        ("exact", #"{"geometry":{"type":["Polygon"]},"properties":{"address":{"country":["FR"]}}}"#, 6643),
        ("exact", #"{"type":["chat.typing"],"from":{"roles":["bot"]}}"#, 6474),
        ("prefix", #"{"timestamp":[{"prefix":"2023-09-29"}]}"#, 3353),
        ("prefix", #"{"data":{"sensorId":[{"prefix":"VB-001"}]}}"#, 3404),
        ("prefix", #"{"text":[{"prefix":"deploy"}]}"#, 9482),
        ("prefix", #"{"properties":{"name":[{"prefix":"Saint"}]}}"#, 44703),
        ("prefix", #"{"attachments":{"name":[{"prefix":"IMG_"}]}}"#, 17281),
        ("suffix", #"{"attachments":{"name":[{"suffix":".png"}]}}"#, 26442),
        ("suffix", #"{"sensorLocation":[{"suffix":"Unit 4"}]}"#, 16870),
        ("suffix", #"{"properties":{"name":[{"suffix":"-sur-Mer"}]}}"#, 33203),
        ("suffix", #"{"from":{"id":[{"suffix":"7"}]}}"#, 6702),
        ("suffix", #"{"metadata":{"calibrationDate":[{"suffix":"-15"}]}}"#, 33237),
        ("equals-ignore-case", #"{"from":{"name":[{"equals-ignore-case":"ADA"}]}}"#, 16777),
        ("equals-ignore-case", #"{"source":[{"equals-ignore-case":"vibrationsensor"}]}"#, 33374),
        ("equals-ignore-case", #"{"properties":{"address":{"city":[{"equals-ignore-case":"ÉVRY"}]}}}"#, 22100),
        ("equals-ignore-case", #"{"room":[{"equals-ignore-case":"LOBBY"}]}"#, 22093),
        ("equals-ignore-case", #"{"data":{"unit":[{"equals-ignore-case":"M/S²"}]}}"#, 44438),
        ("prefix-suffix-ignore-case", #"{"text":[{"prefix":{"equals-ignore-case":"DEPLOY"}}]}"#, 28437),
        ("prefix-suffix-ignore-case", #"{"attachments":{"name":[{"suffix":{"equals-ignore-case":".PNG"}}]}}"#, 36753),
        ("prefix-suffix-ignore-case", #"{"properties":{"name":[{"prefix":{"equals-ignore-case":"saint"}}]}}"#, 44703),
        ("prefix-suffix-ignore-case", #"{"sensorLocation":[{"suffix":{"equals-ignore-case":"UNIT 4"}}]}"#, 16870),
        ("prefix-suffix-ignore-case", #"{"eventType":[{"prefix":{"equals-ignore-case":"vib"}}]}"#, 40096),
        ("anything-but", #"{"eventType":[{"anything-but":"VibrationRecorded"}]}"#, 39895),
        ("anything-but", #"{"room":[{"anything-but":["lobby","ops"]}]}"#, 44449),
        ("anything-but", #"{"data":{"vibrationLevel":[{"anything-but":[0,12.5]}]}}"#, 49966),
        ("anything-but", #"{"text":[{"anything-but":{"prefix":"deploy"}}]}"#, 57184),
        ("anything-but", #"{"attachments":{"name":[{"anything-but":{"suffix":".png"}}]}}"#, 42026),
        ("anything-but", #"{"from":{"name":[{"anything-but":{"equals-ignore-case":["ADA","bob"]}}]}}"#, 41486),
        ("anything-but", #"{"properties":{"tags":[{"anything-but":{"wildcard":"*park*"}}]}}"#, 39509),
        ("numeric", #"{"data":{"vibrationLevel":[{"numeric":[">",12]}]}}"#, 33517),
        ("numeric", #"{"data":{"vibrationLevel":[{"numeric":[">=",2,"<",4.5]}]}}"#, 16612),
        ("numeric", #"{"properties":{"population":[{"numeric":["<",1000]}]}}"#, 26782),
        ("numeric", #"{"geometry":{"coordinates":[{"numeric":[">",48.5,"<=",49]}]}}"#, 3985),
        ("numeric", #"{"attachments":{"size":[{"numeric":[">",1e6]}]}}"#, 35370),
        ("numeric", #"{"properties":{"elevation":[{"numeric":["=",0]}]}}"#, 26672),
        ("exists", #"{"systemMessage":[{"exists":true}]}"#, 33522),
        ("exists", #"{"systemMessage":[{"exists":false}],"eventType":["VibrationRecorded"]}"#, 13333),
        ("exists", #"{"attachments":{"kind":[{"exists":true}]}}"#, 50008),
        ("exists", #"{"mentions":[{"exists":false}],"type":["chat.message"]}"#, 17776),
        ("exists", #"{"properties":{"address":{"zip":[{"exists":false}]}},"type":["Feature"]}"#, 33482),
        ("cidr", #"{"gateway":{"ip":[{"cidr":"10.0.0.0/8"}]}}"#, 16659),
        ("cidr", #"{"gateway":{"ip":[{"cidr":"10.1.0.0/16"}]}}"#, 5558),
        ("cidr", #"{"properties":{"ip":[{"cidr":"192.168.0.0/24"}]}}"#, 33181),
        ("cidr", #"{"gateway":{"ip":[{"cidr":"2001:db8::/32"}]}}"#, 25280),
        ("cidr", #"{"properties":{"ip":[{"cidr":"2001:db8:0:1::/64"}]}}"#, 16671),
        ("wildcard", #"{"attachments":{"name":[{"wildcard":"IMG_*.png"}]}}"#, 17281),
        ("wildcard", #"{"sensorLocation":[{"wildcard":"*Line B*"}]}"#, 33326),
        ("wildcard", #"{"text":[{"wildcard":"*on call*"}]}"#, 9551),
        ("wildcard", #"{"properties":{"name":[{"wildcard":"Saint-*-sur-Mer"}]}}"#, 22319),
        ("wildcard", #"{"data":{"sensorId":[{"wildcard":"VB-*7"}]}}"#, 6629),
        ("$or", #"{"$or":[{"eventType":["DeviceReady"]},{"data":{"vibrationLevel":[{"numeric":[">",15]}]}}]}"#, 26676),
        ("$or", #"{"type":["chat.message"],"$or":[{"room":["ops"]},{"mentions":["ada"]}]}"#, 12640),
        ("$or", #"{"$or":[{"properties":{"category":["park"]}},{"properties":{"population":[{"numeric":[">",1e6]}]}}]}"#, 26719),
        ("$or", #"{"from":{"$or":[{"name":["ada"]},{"roles":["admin"]}]}}"#, 25622),
        ("$or", #"{"$or":[{"gateway":{"ip":[{"cidr":"10.0.0.0/8"}]}},{"source":[{"prefix":"Thermo"}]}]}"#, 29244),
        ("array-consistency", #"{"attachments":{"kind":["image"],"name":[{"suffix":".pdf"}]}}"#, 0),
        ("array-consistency", #"{"attachments":{"kind":["file"],"size":[{"numeric":["<",1000]}]}}"#, 9260),
        ("array-consistency", #"{"attachments":{"kind":["image"],"name":[{"prefix":"IMG_"}]}}"#, 17281),
        ("array-consistency", #"{"attachments":{"name":[{"suffix":".png"}],"size":[{"numeric":[">",1e6]}]}}"#, 14836),
        ("array-consistency", #"{"attachments":{"kind":["image"],"thumbnail":[{"exists":false}]}}"#, 24344),
    ]

    static let names = ["ada", "bob", "Chloé", "dmitri", "Eve", "ADA", "zoë", "grace"]
    static let rooms = ["lobby", "ops", "random", "LOBBY", "dev", "support"]
    static let cities = ["Paris", "Évry", "Lyon", "évry", "Nice", "Brest"]
    static let countries = ["FR", "DE", "ES", "IT", "BE"]
    static let placeNames = ["Saint-Malo", "Saint-Jean-sur-Mer", "Boulogne-sur-Mer", "Sainte-Anne", "Lille", "Saint-Aubin-sur-Mer"]
    static let categories = ["park", "school", "museum", "station"]
    static let words = ["deploy", "Deploy", "rollback", "who is on call", "lunch?", "DEPLOY done", "the park is open"]

    /// Event `i` of the corpus: a pure function of the seed and `i`.
    public static func event(_ i: Int) -> JSONValue {
        var g = SeededGenerator(seed: 0x5EED_0000 &+ UInt64(i))
        func s(_ x: String) -> JSONValue { .string(x) }
        func n(_ x: Double) -> JSONValue { .number(x) }
        func pad(_ v: Int, _ width: Int) -> String {
            let digits = String(v)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        func ipv4(_ g: inout SeededGenerator) -> String {
            let a = g.pick([10, 10, 192, 172])
            let b = a == 192 ? 168 : Int.random(in: 0...2, using: &g)
            return "\(a).\(b).\(Int.random(in: 0...1, using: &g)).\(Int.random(in: 0...255, using: &g))"
        }
        func ipv6(_ g: inout SeededGenerator) -> String {
            g.pick([
                "2001:db8:0:1::\(Int.random(in: 1...99, using: &g))", "2001:db8::\(Int.random(in: 1...99, using: &g))",
                "fe80::1", "2001:0DB8:0:1:0:0:0:7",
            ])
        }
        switch i % 3 {
        case 0:  // IoT reading
            let kind = g.pick(["VibrationRecorded", "VibrationRecorded", "TemperatureRecorded", "DeviceReady", "vibrationAlert"])
            var data: [JSONValue.Member] = [
                .init("sensorId", s("VB-" + pad(Int.random(in: 0..<2000, using: &g), 5))),
                .init("vibrationLevel", n(g.pick([0, 1.5, 3, 4.4, 12.5, 13, 16.25, 22]))),
                .init("unit", s(g.pick(["m/s²", "M/S²", "mm/s"]))),
            ]
            if g.chance(0.5) { data.append(.init("baselineVibrationLevel", n(g.pick([4.0, 4.5])))) }
            data.append(.init("difference", n(Double(Int.random(in: 0...100, using: &g)) / 10)))
            var members: [JSONValue.Member] = [
                .init("eventId", s("e-\(i)")),
                .init("eventType", s(kind)),
                .init("timestamp", s("2023-09-\(pad(Int.random(in: 10...29, using: &g), 2))T16:30:25Z")),
                .init("source", s(g.pick(["VibrationSensor", "vibrationSENSOR", "ThermoSensor", "Gateway"]))),
                .init(
                    "sensorLocation", s(g.pick(["Motor Assembly Line B, Conveyor Unit 4", "Line A, Unit 2", "Line B, Unit 14", "Dock"]))),
                .init("version", s("v1.2")),
                .init("data", .object(data)),
                .init(
                    "metadata",
                    .object([
                        .init("model", s("VibroMonitor Pro X1")),
                        .init("calibrationDate", s("2023-0\(Int.random(in: 1...9, using: &g))-\(g.pick(["01", "15"]))")),
                    ])),
                .init("gateway", .object([.init("ip", s(g.chance(0.5) ? ipv4(&g) : ipv6(&g)))])),
            ]
            if g.chance(0.5) {
                members.append(.init("systemMessage", s("Vibration level recorded exceeds the acceptable threshold.")))
            }
            return .object(members)
        case 1:  // GeoJSON feature
            var address: [JSONValue.Member] = [.init("city", s(g.pick(cities))), .init("country", s(g.pick(countries)))]
            if g.chance(0.5) { address.append(.init("zip", s(pad(Int.random(in: 0..<99999, using: &g), 5)))) }
            let lon = Double(Int.random(in: -50...80, using: &g)) / 10
            let lat = Double(Int.random(in: 420...510, using: &g)) / 10
            let polygon = g.chance(0.5)
            return .object([
                .init("type", s("Feature")),
                .init("id", n(Double(i))),
                .init(
                    "properties",
                    .object([
                        .init("name", s(g.pick(placeNames))),
                        .init("category", s(g.pick(categories))),
                        .init("population", n(Double(g.pick([500, 999, 1000, 25000, 2_000_000])))),
                        .init("elevation", n(g.pick([0, -0.0, 12.5, 300, 1e3]))),
                        .init(
                            "tags",
                            .array(
                                (0..<Int.random(in: 0...3, using: &g)).map { _ in
                                    s(g.pick(["green", "park", "Parking", "old", "national-park"]))
                                })),
                        .init("address", .object(address)),
                        .init("ip", s(g.chance(0.5) ? "192.168.0.\(Int.random(in: 0...255, using: &g))" : ipv6(&g))),
                    ])),
                .init(
                    "geometry",
                    .object([
                        .init("type", s(polygon ? "Polygon" : "Point")),
                        .init(
                            "coordinates",
                            polygon
                                ? .array([
                                    .array([.array([n(lon), n(lat)]), .array([n(lon + 0.1), n(lat)]), .array([n(lon), n(lat + 0.1)])])
                                ])
                                : .array([n(lon), n(lat)])),
                    ])),
            ])
        default:  // chat message
            var members: [JSONValue.Member] = [
                .init("type", s(g.pick(["chat.message", "chat.message", "chat.typing"]))),
                .init("room", s(g.pick(rooms))),
                .init(
                    "from",
                    .object([
                        .init("id", s("u\(Int.random(in: 0..<1000, using: &g))")),
                        .init("name", s(g.pick(names))),
                        .init("roles", .array((0..<Int.random(in: 0...2, using: &g)).map { _ in s(g.pick(["admin", "member", "bot"])) })),
                    ])),
                .init("text", s(g.pick(words))),
            ]
            if g.chance(0.6) {
                members.append(.init("mentions", .array((0..<Int.random(in: 1...3, using: &g)).map { _ in s(g.pick(names)) })))
            }
            var attachments: [JSONValue] = []
            for _ in 0..<Int.random(in: 0...3, using: &g) {
                let image = g.chance(0.6)
                var a: [JSONValue.Member] = [
                    .init("kind", s(image ? "image" : "file")),
                    .init(
                        "name",
                        s(
                            image
                                ? g.pick(["IMG_\(Int.random(in: 1...99, using: &g)).png", "photo.PNG", "x.jpg"])
                                : g.pick(["notes.pdf", "a.png", "report.PDF"]))),
                    .init("size", n(Double(g.pick([512, 2048, 1_500_000, 3_000_000])))),
                ]
                if image && g.chance(0.5) { a.append(.init("thumbnail", s("t.png"))) }
                attachments.append(.object(a))
            }
            if !attachments.isEmpty || g.chance(0.5) { members.append(.init("attachments", .array(attachments))) }
            members.append(.init("sentAt", n(Double(1_700_000_000 + i))))
            return .object(members)
        }
    }
}
