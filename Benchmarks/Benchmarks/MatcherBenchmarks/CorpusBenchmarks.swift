import Benchmark
import HeraldCore

// Events/s per operator family on a corpus shaped like the test corpus
// (Tests/HeraldCoreTests/PatternCorpusTests.swift): IoT readings, GeoJSON features and chat
// messages in equal parts, matched (parse+match) against five patterns of one family.

struct CorpusRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func pick(_ items: [String]) -> String { items[int(items.count)] }
    mutating func chance(_ percent: Int) -> Bool { int(100) < percent }
}

/// Event `i` of the corpus as compact JSON.
func corpusEvent(_ i: Int) -> [UInt8] {
    var g = CorpusRandom(state: 0x5EED_0000 &+ UInt64(i))
    let text: String
    switch i % 3 {
    case 0:
        let ip = g.chance(50) ? "10.\(g.int(3)).\(g.int(2)).\(g.int(256))" : "2001:db8:0:1::\(g.int(99) + 1)"
        let message = g.chance(50) ? #","systemMessage":"Vibration level recorded exceeds the acceptable threshold.""# : ""
        text =
            #"{"eventId":"e-\#(i)","eventType":"\#(g.pick(["VibrationRecorded", "VibrationRecorded", "TemperatureRecorded", "DeviceReady"]))","#
            + #""timestamp":"2023-09-\#(10 + g.int(20))T16:30:25Z","source":"\#(g.pick(["VibrationSensor", "vibrationSENSOR", "ThermoSensor"]))","#
            + #""sensorLocation":"\#(g.pick(["Motor Assembly Line B, Conveyor Unit 4", "Line A, Unit 2", "Dock"]))","version":"v1.2","#
            + #""data":{"sensorId":"VB-\#(10000 + g.int(2000))","vibrationLevel":\#(g.pick(["0", "1.5", "4.4", "12.5", "16.25", "22"])),"#
            + #""unit":"\#(g.pick(["m/s²", "M/S²", "mm/s"]))","difference":\#(g.int(100))},"#
            + #""metadata":{"model":"VibroMonitor Pro X1","calibrationDate":"2023-0\#(1 + g.int(9))-\#(g.pick(["01", "15"]))"},"#
            + #""gateway":{"ip":"\#(ip)"}\#(message)}"#
    case 1:
        let zip = g.chance(50) ? #","zip":"\#(10000 + g.int(89999))""# : ""
        let lon = Double(g.int(130) - 50) / 10
        let lat = Double(g.int(90) + 420) / 10
        let geometry = g.chance(50)
            ? #"{"type":"Polygon","coordinates":[[[\#(lon),\#(lat)],[\#(lon + 0.1),\#(lat)],[\#(lon),\#(lat + 0.1)]]]}"#
            : #"{"type":"Point","coordinates":[\#(lon),\#(lat)]}"#
        let tags = (0..<g.int(4)).map { _ in "\"\(g.pick(["green", "park", "Parking", "old", "national-park"]))\"" }.joined(separator: ",")
        text =
            #"{"type":"Feature","id":\#(i),"properties":{"name":"\#(g.pick(["Saint-Malo", "Saint-Jean-sur-Mer", "Boulogne-sur-Mer", "Lille"]))","#
            + #""category":"\#(g.pick(["park", "school", "museum", "station"]))","population":\#(g.pick(["500", "999", "25000", "2000000"])),"#
            + #""elevation":\#(g.pick(["0", "12.5", "300"])),"tags":[\#(tags)],"#
            + #""address":{"city":"\#(g.pick(["Paris", "Évry", "Lyon", "évry"]))","country":"\#(g.pick(["FR", "DE", "ES"]))"\#(zip)},"#
            + #""ip":"\#(g.chance(50) ? "192.168.0.\(g.int(256))" : "2001:db8:0:1::7")"},"geometry":\#(geometry)}"#
    default:
        let mentions = g.chance(60)
            ? #","mentions":[\#((0...g.int(3)).map { _ in "\"\(g.pick(["ada", "bob", "Chloé", "Eve"]))\"" }.joined(separator: ","))]"# : ""
        let attachments = (0..<g.int(4)).map { _ -> String in
            let image = g.chance(60)
            let name = image ? g.pick(["IMG_\(g.int(99)).png", "photo.PNG", "x.jpg"]) : g.pick(["notes.pdf", "report.PDF"])
            return #"{"kind":"\#(image ? "image" : "file")","name":"\#(name)","size":\#(g.pick(["512", "2048", "1500000"]))}"#
        }.joined(separator: ",")
        text =
            #"{"type":"\#(g.pick(["chat.message", "chat.message", "chat.typing"]))","room":"\#(g.pick(["lobby", "ops", "random", "LOBBY"]))","#
            + #""from":{"id":"u\#(g.int(1000))","name":"\#(g.pick(["ada", "bob", "ADA", "grace"]))","roles":["\#(g.pick(["admin", "member"]))"]},"#
            + #""text":"\#(g.pick(["deploy", "Deploy", "who is on call", "DEPLOY done"]))"\#(mentions),"attachments":[\#(attachments)],"#
            + #""sentAt":\#(1_700_000_000 + i)}"#
    }
    return Array(text.utf8)
}

/// Five patterns per operator family (the families of the test corpus).
let corpusFamilies: [(String, [String])] = [
    ("exact", [#"{"eventType":["VibrationRecorded"]}"#, #"{"data":{"sensorId":["VB-10042"]}}"#,
               #"{"type":["Feature"],"properties":{"category":["park"]}}"#, #"{"room":["lobby","ops"],"from":{"name":["ada"]}}"#,
               #"{"geometry":{"type":["Polygon"]},"properties":{"address":{"country":["FR"]}}}"#]),
    ("prefix", [#"{"timestamp":[{"prefix":"2023-09-29"}]}"#, #"{"data":{"sensorId":[{"prefix":"VB-101"}]}}"#,
                #"{"text":[{"prefix":"deploy"}]}"#, #"{"properties":{"name":[{"prefix":"Saint"}]}}"#,
                #"{"attachments":{"name":[{"prefix":"IMG_"}]}}"#]),
    ("suffix", [#"{"attachments":{"name":[{"suffix":".png"}]}}"#, #"{"sensorLocation":[{"suffix":"Unit 4"}]}"#,
                #"{"properties":{"name":[{"suffix":"-sur-Mer"}]}}"#, #"{"from":{"id":[{"suffix":"7"}]}}"#,
                #"{"metadata":{"calibrationDate":[{"suffix":"-15"}]}}"#]),
    ("equals-ignore-case", [#"{"from":{"name":[{"equals-ignore-case":"ADA"}]}}"#, #"{"source":[{"equals-ignore-case":"vibrationsensor"}]}"#,
                            #"{"properties":{"address":{"city":[{"equals-ignore-case":"ÉVRY"}]}}}"#,
                            #"{"room":[{"equals-ignore-case":"LOBBY"}]}"#, #"{"data":{"unit":[{"equals-ignore-case":"M/S²"}]}}"#]),
    ("anything-but", [#"{"eventType":[{"anything-but":"VibrationRecorded"}]}"#, #"{"room":[{"anything-but":["lobby","ops"]}]}"#,
                      #"{"data":{"vibrationLevel":[{"anything-but":[0,12.5]}]}}"#, #"{"text":[{"anything-but":{"prefix":"deploy"}}]}"#,
                      #"{"properties":{"tags":[{"anything-but":{"wildcard":"*park*"}}]}}"#]),
    ("numeric", [#"{"data":{"vibrationLevel":[{"numeric":[">",12]}]}}"#, #"{"data":{"vibrationLevel":[{"numeric":[">=",2,"<",4.5]}]}}"#,
                 #"{"properties":{"population":[{"numeric":["<",1000]}]}}"#,
                 #"{"geometry":{"coordinates":[{"numeric":[">",48.5,"<=",49]}]}}"#, #"{"attachments":{"size":[{"numeric":[">",1e6]}]}}"#]),
    ("exists", [#"{"systemMessage":[{"exists":true}]}"#, #"{"systemMessage":[{"exists":false}],"eventType":["VibrationRecorded"]}"#,
                #"{"attachments":{"kind":[{"exists":true}]}}"#, #"{"mentions":[{"exists":false}],"type":["chat.message"]}"#,
                #"{"properties":{"address":{"zip":[{"exists":false}]}},"type":["Feature"]}"#]),
    ("cidr", [#"{"gateway":{"ip":[{"cidr":"10.0.0.0/8"}]}}"#, #"{"gateway":{"ip":[{"cidr":"10.1.0.0/16"}]}}"#,
              #"{"properties":{"ip":[{"cidr":"192.168.0.0/24"}]}}"#, #"{"gateway":{"ip":[{"cidr":"2001:db8::/32"}]}}"#,
              #"{"properties":{"ip":[{"cidr":"2001:db8:0:1::/64"}]}}"#]),
    ("wildcard", [#"{"attachments":{"name":[{"wildcard":"IMG_*.png"}]}}"#, #"{"sensorLocation":[{"wildcard":"*Line B*"}]}"#,
                  #"{"text":[{"wildcard":"*on call*"}]}"#, #"{"properties":{"name":[{"wildcard":"Saint-*-sur-Mer"}]}}"#,
                  #"{"data":{"sensorId":[{"wildcard":"VB-*7"}]}}"#]),
    ("$or", [#"{"$or":[{"eventType":["DeviceReady"]},{"data":{"vibrationLevel":[{"numeric":[">",15]}]}}]}"#,
             #"{"type":["chat.message"],"$or":[{"room":["ops"]},{"mentions":["ada"]}]}"#,
             #"{"$or":[{"properties":{"category":["park"]}},{"properties":{"population":[{"numeric":[">",1e6]}]}}]}"#,
             #"{"from":{"$or":[{"name":["ada"]},{"roles":["admin"]}]}}"#,
             #"{"$or":[{"gateway":{"ip":[{"cidr":"10.0.0.0/8"}]}},{"source":[{"prefix":"Thermo"}]}]}"#]),
    ("array-consistency", [#"{"attachments":{"kind":["image"],"name":[{"suffix":".pdf"}]}}"#,
                           #"{"attachments":{"kind":["file"],"size":[{"numeric":["<",1000]}]}}"#,
                           #"{"attachments":{"kind":["image"],"name":[{"prefix":"IMG_"}]}}"#,
                           #"{"attachments":{"name":[{"suffix":".png"}],"size":[{"numeric":[">",1e6]}]}}"#,
                           #"{"attachments":{"kind":["image"],"thumbnail":[{"exists":false}]}}"#]),
]

nonisolated(unsafe) var corpusEvents: [[UInt8]] = []

func registerCorpusBenchmarks() {
    for (family, texts) in corpusFamilies {
        Benchmark("corpus \(family) (5 patterns), parse+match") { benchmark in
            if corpusEvents.isEmpty { corpusEvents = (0..<4096).map(corpusEvent) }
            matchRepeatedly(benchmark, index(texts.map(pattern)), corpusEvents, parse: true)
        }
    }
}
