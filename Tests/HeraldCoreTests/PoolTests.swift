import Testing

@testable import HeraldCore

/// `Pool`: stable ids, freed slots reused (last freed first), counts with and without them.
@Suite struct PoolTests {
    @Test func idsAreStableAndFreedSlotsAreReusedLastFirst() {
        var pool = Pool<String>()
        #expect(pool.insert("a") == 0 && pool.insert("b") == 1 && pool.insert("c") == 2)
        pool.release(0)
        pool.release(2, resetTo: "")
        #expect(pool.count == 3 && pool.liveCount == 1)
        #expect(pool[UInt32(1)] == "b", "releasing other slots leaves a live id's value alone")
        #expect(pool[0] == "a" && pool[2] == "", "a released slot keeps its value or the reset one")
        #expect(pool.insert("d") == 2 && pool.insert("e") == 0 && pool.insert("f") == 3)
        #expect(Array(pool) == ["e", "b", "d", "f"] && pool.liveCount == 4)
    }

    @Test func subscriptsModifyInPlace() {
        var pool = Pool([[1], [2]])
        pool[UInt32(0)].append(10)
        pool[1][0] += 5
        #expect(pool[0] == [1, 10] && pool[UInt32(1)] == [7])
        #expect(pool.indices == 0..<2)
    }
}
