/// The report as one self-contained HTML page: inline CSS and SVG, no script, no font, image or
/// style sheet fetched from anywhere (it opens from disk, offline). Every text from the journal
/// (names, options, errors) is escaped.
extension RunReport {
    static let colours: [EventKind: String] = [
        .planTable: "#8c8c8c", .createTable: "#6a3d9a", .dropPart: "#b15928", .downloadPart: "#1f78b4",
        .attachPart: "#33a02c", .dropTable: "#cab2d6", .detachPart: "#fdbf6f", .verifyTable: "#a6cee3",
        .killMutation: "#fb9a99",
    ]

    static var style: String {
        let kinds = EventKind.allCases.map { ".k-\($0.rawValue){fill:\(colours[$0] ?? "#999")}" }.joined(separator: "\n")
        return """
            body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222}
            h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:20px 0 6px}
            dl.header{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:0}
            dt{color:#666}dd{margin:0;word-break:break-all}code{font-size:12px}
            .state-done{color:#1b7a1b}.state-failed,.state-partly_failed{color:#c00000}.state-interrupted,.state-running{color:#b36b00}
            .legend{display:flex;flex-wrap:wrap;gap:4px 14px;align-items:center;margin:4px 0 8px}
            .legend svg{vertical-align:middle}.note{color:#555;font-size:12px}
            svg.timeline{font:11px system-ui,sans-serif;background:#fff}
            .axis line{stroke:#e4e4e4}.axis text{fill:#777}
            .lane-bg{fill:transparent}.lane:nth-child(even) .lane-bg{fill:#f6f6f6}.label{fill:#333}
            \(kinds)
            .k-failed{fill:#ff9d9d}
            .failed{stroke:#d00000;stroke-width:2}.interrupted{stroke:#000;stroke-width:1.5;stroke-dasharray:3 2}
            .open{fill-opacity:.45}
            table.savings{border-collapse:collapse;font-size:13px}
            .savings th,.savings td{border:1px solid #ddd;padding:2px 6px;text-align:right}
            .savings th:first-child,.savings td:first-child{text-align:left}.savings tr.total td{font-weight:600}
            .savings tr.failed td:first-child{color:#c00000}
            li.failed-step{margin-bottom:4px}pre{white-space:pre-wrap;margin:2px 0;font-size:12px}
            """
    }

    /// The page around the timeline's SVG.
    func html(timeline: String) -> String {
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>inplace run \(run.id): \(HTML.escape(run.backup))</title>
            <style>
            \(Self.style)
            </style></head>
            <body>
            <h1>Run \(run.id): backup <code>\(HTML.escape(run.backup))</code></h1>

            """
        out += header() + "<h2>Timeline</h2>\n" + legend() + timeline + "\n" + savingsTable() + failedList()
        out += "<p class=\"note\">Written by inplace \(HTML.escape(InplaceVersion.current)) from the journal (inplace journal report). No script; nothing is fetched.</p>\n</body></html>\n"
        return out
    }

    private func header() -> String {
        var rows: [(String, String)] = [
            ("backup", run.backup), ("source", run.location.map { "\(run.source): \($0)" } ?? run.source),
            ("state", run.state.rawValue), ("started", run.startedAt),
        ]
        if let finished = run.finishedAt { rows.append(("finished", finished)) }
        rows.append(("last change", run.updatedAt))
        if let by = run.supersededBy { rows.append(("superseded by", "run \(by)")) }
        rows.append(("steps' time", "\(TimelineDrawing.seconds(seconds)) s, from \(firstAt ?? "-") to \(lastAt ?? "-")"))
        rows.append(("options", run.options))
        rows.append(("inplace", run.toolVersion))
        var out = "<dl class=\"header\">\n"
        for (name, value) in rows {
            let state = name == "state" ? " class=\"state-\(HTML.escape(value))\"" : ""
            out += "<dt>\(name)</dt><dd\(state)>\(name == "options" ? "<code>\(HTML.escape(value))</code>" : HTML.escape(value))</dd>\n"
        }
        let counts = [("done", steps.done), ("failed", steps.failed), ("interrupted", steps.interrupted),
                      ("started", steps.started), ("pending", steps.pending), ("superseded", steps.superseded)]
        out += "<dt>steps</dt><dd>\(steps.total): " + counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ") + "</dd>\n</dl>\n"
        return out
    }

    private func legend() -> String {
        func swatch(_ classes: String, _ name: String) -> String {
            "<span><svg width=\"22\" height=\"14\"><rect class=\"\(classes)\" x=\"2\" y=\"2\" width=\"18\" height=\"10\"/></svg> \(name)</span>"
        }
        var items = EventKind.allCases.map { swatch("k-\($0.rawValue)", $0.rawValue) }
        items.append(swatch("k-attach-part failed", "failed (red outline)"))
        items.append(swatch("k-attach-part interrupted", "interrupted (dashed)"))
        items.append(swatch("k-attach-part open", "not finished (pale, to the end)"))
        let merged = tables.filter { $0.timeline == .merged }.count
        let note = """
            One lane per table; each step is a bar from its first <code>started</code> to its last end \
            (done, failed, interrupted or superseded); hover a bar for the step and its error. A lane of more \
            than \(Self.barLimit) steps, or past \(Self.barBudget) bars in all, is drawn as merged spans: \
            \(TimelineDrawing.slices(mergedLanes: merged)) slices of time, each coloured by the kind most of its running steps have, \
            with its failed and interrupted steps still drawn one by one (up to \(TimelineDrawing.markedLimit) a lane). \
            \(merged == 0 ? "No lane is merged here." : "\(merged) lane(s) merged here, marked (merged).")
            """
        return "<div class=\"legend\">\(items.joined())</div>\n<p class=\"note\">\(note)</p>\n"
    }

    static func bytes(_ value: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while abs(amount) >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : "\(TimelineDrawing.number(amount)) \(units[unit])"
    }

    private func savingsTable() -> String {
        func cells(_ s: Savings) -> String {
            let share = s.backupBytes > 0 ? " (\(TimelineDrawing.number(100 * Double(s.savedBytes) / Double(s.backupBytes)))%)" : ""
            return [
                "\(s.backupParts) / \(Self.bytes(s.backupBytes))", "\(s.keptParts) / \(Self.bytes(s.keptBytes))",
                "\(s.downloadedParts) / \(Self.bytes(s.downloadedBytes))",
                "\(s.resequencedParts) / \(Self.bytes(s.resequencedBytes))",
                "\(s.droppedParts) / \(Self.bytes(s.droppedBytes))", "\(Self.bytes(s.savedBytes))\(share)",
            ].map { "<td>\($0)</td>" }.joined()
        }
        var out = """
            <h2>What in place saved</h2>
            <p class="note">Parts / bytes. A full restore would have fetched every part of the backup for the table \
            (kept + re-sequenced + to download); saved = that minus what was downloaded. Re-sequenced parts were \
            detached and attached again in the backup's order, nothing fetched.</p>
            <table class="savings"><tr><th>table</th><th>steps (done, failed)</th><th>full restore</th><th>kept</th>\
            <th>downloaded</th><th>re-sequenced</th><th>dropped</th><th>saved</th></tr>

            """
        for table in tables {
            let name = HTML.escape("\(table.database).\(table.table)")
            let refused = table.refused.map { " — refused: \(HTML.escape($0))" } ?? ""
            out += "<tr\(table.steps.failed > 0 ? " class=\"failed\"" : "") data-table=\"\(name)\"><td>\(name)\(refused)</td>"
            out += "<td>\(table.steps.total) (\(table.steps.done), \(table.steps.failed))</td>\(cells(table.savings))</tr>\n"
        }
        out += "<tr class=\"total\"><td>all \(tables.count) table(s)</td><td>\(steps.total) (\(steps.done), \(steps.failed))</td>\(cells(savings))</tr>\n</table>\n"
        return out
    }

    private func failedList() -> String {
        guard !failedSteps.isEmpty else { return "" }
        var out = "<h2>Failed steps</h2>\n"
        if steps.failed > failedSteps.count { out += "<p class=\"note\">The first \(failedSteps.count) of \(steps.failed).</p>\n" }
        out += "<ul>\n"
        for step in failedSteps {
            out += "<li class=\"failed-step\" data-step=\"\(step.id)\">step \(step.id): \(step.kind.rawValue) \(HTML.escape("\(step.database).\(step.table)")) \(HTML.escape(step.part ?? "")), \(step.attempts) attempt(s)<pre>\(HTML.escape(step.error ?? ""))</pre></li>\n"
        }
        return out + "</ul>\n"
    }
}
