import Foundation

/// The report's timeline as inline SVG: a lane per table (`<g class="lane" data-table=...>`),
/// each step a bar from its first `started` to its last end state, coloured by kind (`k-<kind>`),
/// with its state as a class (`s-<state>`), `failed` / `interrupted` / `open` marked, and what it
/// was (and its error) in a `<title>`, which browsers show on hover.
///
/// A lane the report draws merged (`RunReport.Drawing.merged`) is cut into `slices` slices of
/// time (`maxSlices`, fewer when many lanes are merged: `sliceBudget` in all, at least `minSlices`); each slice is coloured by the kind most of the steps running in it have, and adjacent
/// slices of one kind are one span whose `<title>` counts the steps that began in it. Its failed
/// and interrupted steps are still drawn one by one, up to `markedLimit` per lane. Steps are
/// added in any order, one at a time; memory grows with the bars drawn, not with the steps.
struct TimelineDrawing {
    static let labelWidth = 300.0
    static let plotWidth = 820.0
    static let axisHeight = 26.0
    static let laneHeight = 20.0
    static let barHeight = 12.0
    static let maxSlices = 205
    static let minSlices = 20
    static let sliceBudget = 20_000
    static let markedLimit = 200
    static var width: Double { labelWidth + plotWidth + 16 }

    private struct Lane {
        var table: RunReport.Table
        var shapes = ""
        var marked = 0
        /// Merged lanes: per slice and kind (the last index: failed steps past `markedLimit`),
        /// the steps running in it and those that began in it.
        var running: [Int32] = []
        var began: [Int32] = []
    }

    private static let kinds = EventKind.allCases
    private var lanes: [Lane]
    private let index: [TableKey: Int]
    private let start: Double
    private let span: Double
    private let buckets: Int

    /// Slices per merged lane when `merged` lanes are.
    static func slices(mergedLanes merged: Int) -> Int {
        max(minSlices, min(maxSlices, sliceBudget / max(1, merged)))
    }

    init(report: RunReport) {
        let buckets = Self.slices(mergedLanes: report.tables.filter { $0.timeline == .merged }.count)
        self.buckets = buckets
        lanes = report.tables.map { table in
            var lane = Lane(table: table)
            if table.timeline == .merged {
                lane.running = Array(repeating: 0, count: buckets * (Self.kinds.count + 1))
                lane.began = lane.running
            }
            return lane
        }
        index = Dictionary(report.tables.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { a, _ in a })
        start = report.firstAt.flatMap(parseDate)?.timeIntervalSince1970 ?? 0
        let end = report.lastAt.flatMap(parseDate)?.timeIntervalSince1970 ?? start
        span = max(end - start, 0.001)
    }

    private func x(_ time: Double) -> Double {
        Self.labelWidth + min(max((time - start) / span, 0), 1) * Self.plotWidth
    }

    private func laneTop(_ lane: Int) -> Double { Self.axisHeight + Double(lane) * Self.laneHeight }

    /// `+1.234 s` from the run's first transition.
    private func offset(_ time: Double) -> String { "+\(Self.seconds(time - start)) s" }

    static func seconds(_ value: Double) -> String {
        let millis = Int((value * 1000).rounded())
        let fraction = String(millis % 1000)
        return "\(millis / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }

    mutating func add(_ step: RunReport.Step) {
        guard let lane = index[step.table] else { return }
        let marked = step.state == .failed || step.state == .interrupted
        if lanes[lane].table.timeline == .bars {
            lanes[lane].shapes += bar(step, lane: lane)
            return
        }
        if marked && lanes[lane].marked < Self.markedLimit {
            lanes[lane].marked += 1
            lanes[lane].shapes += bar(step, lane: lane)
            return
        }
        let kind = marked ? Self.kinds.count : Self.kinds.firstIndex(of: step.kind) ?? 0
        let first = bucket(step.began)
        let last = max(first, bucket(step.ended ?? start + span))
        for slice in first...last { lanes[lane].running[slice * (Self.kinds.count + 1) + kind] += 1 }
        lanes[lane].began[first * (Self.kinds.count + 1) + kind] += 1
    }

    private func bucket(_ time: Double) -> Int {
        min(buckets - 1, max(0, Int((time - start) / span * Double(buckets))))
    }

    private func bar(_ step: RunReport.Step, lane: Int) -> String {
        let left = x(step.began)
        let right = x(step.ended ?? start + span)
        var classes = "step k-\(step.kind.rawValue) s-\(step.state.rawValue)"
        if step.state == .failed { classes += " failed" }
        if step.state == .interrupted { classes += " interrupted" }
        if step.ended == nil { classes += " open" }
        let tall = step.state == .failed || step.state == .interrupted
        let y = laneTop(lane) + (tall ? 2 : 4)
        let duration = step.ended.map { "\(Self.seconds($0 - step.began)) s" } ?? "not finished"
        var title = "\(step.kind.rawValue) \(step.table.database).\(step.table.table)\(step.part.map { " \($0)" } ?? "") (step \(step.id)): \(step.state.rawValue), \(step.attempts) attempt(s), \(duration), from \(offset(step.began))"
        if let error = step.error { title += "\n" + String(error.prefix(600)) }
        return "<rect class=\"\(classes)\" x=\"\(Self.number(left))\" y=\"\(Self.number(y))\" width=\"\(Self.number(max(1, right - left)))\" height=\"\(Self.number(tall ? Self.laneHeight - 4 : Self.barHeight))\"><title>\(HTML.escape(title))</title></rect>\n"
    }

    /// A coordinate with one decimal.
    static func number(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return tenths % 10 == 0 ? String(tenths / 10) : "\(tenths / 10).\(tenths % 10)"
    }

    /// A merged lane's spans: adjacent slices whose most running kind is the same.
    private func spans(_ lane: Lane, at row: Int) -> String {
        let width = Self.kinds.count + 1
        let sliceWidth = Self.plotWidth / Double(buckets)
        func dominant(_ slice: Int) -> Int? {
            let counts = lane.running[(slice * width)..<((slice + 1) * width)]
            guard let most = counts.max(), most > 0 else { return nil }
            return counts.firstIndex(of: most)! - slice * width
        }
        var out = ""
        var slice = 0
        while slice < buckets {
            guard let kind = dominant(slice) else {
                slice += 1
                continue
            }
            var end = slice + 1
            while end < buckets && dominant(end) == kind { end += 1 }
            var began = Array(repeating: 0, count: width)
            for inner in slice..<end {
                for k in 0..<width { began[k] += Int(lane.began[inner * width + k]) }
            }
            let name = kind < Self.kinds.count ? Self.kinds[kind].rawValue : "failed"
            let counts = (0..<width).filter { began[$0] > 0 }
                .map { "\($0 < Self.kinds.count ? Self.kinds[$0].rawValue : "failed or interrupted") \(began[$0])" }
            let from = span * Double(slice) / Double(buckets)
            let to = span * Double(end) / Double(buckets)
            let title = "+\(Self.seconds(from))–\(Self.seconds(to)) s: \(began.reduce(0, +)) began (\(counts.joined(separator: ", ")))"
            out += "<rect class=\"span k-\(name)\(kind == Self.kinds.count ? " failed" : "")\" x=\"\(Self.number(Self.labelWidth + Double(slice) * sliceWidth))\" y=\"\(Self.number(laneTop(row) + 4))\" width=\"\(Self.number(Double(end - slice) * sliceWidth))\" height=\"\(Self.number(Self.barHeight))\"><title>\(HTML.escape(title))</title></rect>\n"
            slice = end
        }
        return out
    }

    /// Time ticks at a round interval, about eight across.
    private func axis() -> String {
        let rough = span / 8
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? rough
        var out = "<g class=\"axis\">\n"
        var tick = 0.0
        while tick <= span + step / 1000 {
            let left = Self.number(x(start + tick))
            out += "<line x1=\"\(left)\" y1=\"\(Self.number(Self.axisHeight - 6))\" x2=\"\(left)\" y2=\"\(Self.number(Self.axisHeight + Double(lanes.count) * Self.laneHeight))\"/><text x=\"\(left)\" y=\"14\">+\(Self.tick(tick, step: step)) s</text>\n"
            tick += step
        }
        return out + "</g>\n"
    }

    private static func tick(_ value: Double, step: Double) -> String {
        step >= 1 ? String(Int(value.rounded())) : seconds(value)
    }

    func svg() -> String {
        let height = Self.axisHeight + Double(lanes.count) * Self.laneHeight + 6
        var out = "<svg class=\"timeline\" width=\"\(Self.number(Self.width))\" height=\"\(Self.number(height))\" viewBox=\"0 0 \(Self.number(Self.width)) \(Self.number(height))\" role=\"img\" aria-label=\"timeline of the run's steps\">\n"
        out += axis()
        for (row, lane) in lanes.enumerated() {
            let name = "\(lane.table.database).\(lane.table.table)"
            let label = name.count > 42 ? String(name.prefix(41)) + "…" : name
            let top = laneTop(row)
            out += "<g class=\"lane\" data-table=\"\(HTML.escape(name))\" data-steps=\"\(lane.table.steps.total)\" data-drawn=\"\(lane.table.timeline.rawValue)\">\n"
            out += "<rect class=\"lane-bg\" x=\"0\" y=\"\(Self.number(top))\" width=\"\(Self.number(Self.width))\" height=\"\(Self.number(Self.laneHeight))\"/>"
            out += "<text class=\"label\" x=\"4\" y=\"\(Self.number(top + 14))\">\(HTML.escape(label))\(lane.table.timeline == .merged ? " (merged)" : "")<title>\(HTML.escape(name)): \(lane.table.steps.total) step(s)</title></text>\n"
            if lane.table.timeline == .merged { out += spans(lane, at: row) }
            out += lane.shapes
            out += "</g>\n"
        }
        return out + "</svg>"
    }
}

/// Text put into HTML, escaped: element content and attribute values alike (the five
/// characters XML escapes are the ones HTML needs).
enum HTML {
    static func escape(_ text: String) -> String { xmlEscape(text) }
}
