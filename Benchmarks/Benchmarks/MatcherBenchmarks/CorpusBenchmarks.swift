import Benchmark
import HeraldCore
import HeraldPatternCorpus

// Events/s per operator family on the corpus of the corpus test
// (Sources/HeraldPatternCorpus: IoT readings, GeoJSON features and chat messages in turn),
// matched (parse+match) against the first five patterns of one family.

/// Event `i` of the corpus as compact JSON.
func corpusEvent(_ i: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    JSONWriter.write(PatternCorpus.event(i), into: &bytes)
    return bytes
}

/// The first five patterns of each operator family, in the corpus's order of families.
let corpusFamilies: [(String, [String])] = {
    var families: [(String, [String])] = []
    for row in PatternCorpus.patterns {
        if let i = families.firstIndex(where: { $0.0 == row.family }) {
            if families[i].1.count < 5 { families[i].1.append(row.pattern) }
        } else {
            families.append((row.family, [row.pattern]))
        }
    }
    return families
}()

nonisolated(unsafe) var corpusEvents: [[UInt8]] = []

func registerCorpusBenchmarks() {
    for (family, texts) in corpusFamilies {
        Benchmark("corpus \(family) (5 patterns), parse+match") { benchmark in
            if corpusEvents.isEmpty { corpusEvents = (0..<4096).map(corpusEvent) }
            matchRepeatedly(benchmark, index(texts.map(pattern)), corpusEvents, parse: true)
        }
    }
}
