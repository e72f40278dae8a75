/// Runs `body` for every item, at most `width` at once; results in the items' order.
public func concurrentMap<T: Sendable, R: Sendable>(
    _ items: [T], width: Int, _ body: @escaping @Sendable (T) async throws -> R
) async throws -> [R] {
    try await withThrowingTaskGroup(of: (Int, R).self) { group in
        var results = [R?](repeating: nil, count: items.count)
        var next = 0
        func start() {
            let index = next
            let item = items[index]
            group.addTask { (index, try await body(item)) }
            next += 1
        }
        while next < min(items.count, max(1, width)) { start() }
        while let (index, result) = try await group.next() {
            results[index] = result
            if next < items.count { start() }
        }
        return results.map { $0! }
    }
}
