/// The web UI's stylesheet and script, embedded in the binary (machines running Ballast may be
/// offline: no CDN, no web fonts). Served as `/ui/style.css` and `/ui/app.js`; the pages' content
/// security policy allows scripts and styles from the node itself only, so no inline script runs.
enum UIAssets {
    /// `/ui/style.css`.
    static let css = """
        :root { --fg: #1d2430; --muted: #5c6675; --line: #dde1e7; --bg: #f6f7f9; --card: #fff; --accent: #1f5fbf;
                --good: #17803d; --bad: #b42318; --warn: #a15c00; --mono: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #17202e; color: #fff; }
        header a { color: #d8e2f1; text-decoration: none; }
        header a:hover, header a.active { color: #fff; text-decoration: underline; }
        header .brand { font-weight: 700; font-size: 16px; color: #fff; letter-spacing: .5px; }
        header nav { display: flex; gap: 18px; }
        header .node { margin-left: auto; color: #aab6c8; font-size: 12px; }
        main { padding: 20px 24px 48px; max-width: 1400px; }
        h1 { font-size: 20px; margin: 0 0 14px; word-break: break-all; }
        h2 { font-size: 15px; margin: 24px 0 8px; }
        a { color: var(--accent); }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; margin-bottom: 16px; }
        table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); }
        th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: #eef1f5; font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .3px; color: var(--muted); }
        td.mono, .mono { font-family: var(--mono); font-size: 12.5px; }
        td.nowrap { white-space: nowrap; }
        td.details { word-break: break-word; white-space: pre-wrap; }
        tr.tone-good td.type { color: var(--good); }
        tr.tone-bad td { background: #fdf0ef; }
        tr.tone-bad td.type { color: var(--bad); font-weight: 600; }
        tr.tone-warning td.type { color: var(--warn); font-weight: 600; }
        .status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #e8ecf2; }
        .status-running { background: #e3edfb; color: #1f4f99; }
        .status-completed { background: #e3f4e8; color: var(--good); }
        .status-failed, .status-terminated, .status-timed-out { background: #fbe5e3; color: var(--bad); }
        .status-canceled { background: #fbefdc; color: var(--warn); }
        .counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 14px; }
        .counts a { text-decoration: none; }
        form.filter { display: flex; gap: 8px; margin-bottom: 8px; }
        form.filter.inline { align-items: center; }
        form.filter input[type=text].narrow { flex: 0 0 70px; }
        h2.first { margin-top: 0; }
        form.filter input[type=text] { flex: 1; font-family: var(--mono); padding: 7px 9px; border: 1px solid #b9c1cc; border-radius: 4px; }
        button, .button { padding: 7px 14px; border: 1px solid #1a4f9f; background: var(--accent); color: #fff; border-radius: 4px;
                          cursor: pointer; font: inherit; text-decoration: none; display: inline-block; }
        button.danger { background: var(--bad); border-color: #8f1c13; }
        .notice { padding: 10px 14px; border-radius: 6px; margin-bottom: 14px; border: 1px solid; }
        .notice.error { background: #fdf0ef; border-color: #f1b7b0; color: #7a1a12; }
        .notice.info { background: #eef4fc; border-color: #bcd2f1; }
        .notice.ok { background: #ecf7ef; border-color: #b5dfc2; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; word-break: break-all; }
        pre.json { background: #f3f5f8; border: 1px solid var(--line); border-radius: 4px; padding: 10px; margin: 4px 0 0;
                   max-height: 360px; overflow: auto; font: 12.5px/1.4 var(--mono); white-space: pre-wrap; word-break: break-word; }
        .grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
        .actions { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; }
        .actions form label { display: block; margin: 6px 0 2px; color: var(--muted); font-size: 12px; }
        .actions form input[type=text], .actions form input[type=password], .actions form textarea {
            width: 100%; padding: 6px 8px; border: 1px solid #b9c1cc; border-radius: 4px; font: inherit; }
        .actions form textarea { font-family: var(--mono); min-height: 60px; }
        .actions form .confirm { display: flex; gap: 6px; align-items: center; margin: 8px 0; color: var(--fg); font-size: 13px; }
        .muted { color: var(--muted); }
        .role-leader { font-weight: 700; color: var(--good); }
        .unreachable { color: var(--bad); font-weight: 600; }
        .pager { margin-top: 12px; display: flex; gap: 12px; align-items: center; }
        """

    /// `/ui/app.js`: live refresh of the cluster page. Values are set with `textContent` only.
    static let javaScript = """
        "use strict";
        (function () {
          var table = document.getElementById("members");
          if (!table) { return; }
          var body = table.querySelector("tbody");
          var leaderCell = document.getElementById("leader");
          var updated = document.getElementById("updated");
          function cell(row, text, className) {
            var td = document.createElement("td");
            td.textContent = text;
            if (className) { td.className = className; }
            row.appendChild(td);
          }
          function render(view) {
            var rows = [];
            var commits = view.members.map(function (m) { return m.reachable ? m.commit : 0; });
            var top = Math.max.apply(null, commits.concat([0]));
            view.members.forEach(function (m) {
              var tr = document.createElement("tr");
              tr.setAttribute("data-member", m.id);
              tr.setAttribute("data-role", m.role);
              cell(tr, m.id, "mono");
              cell(tr, m.role, m.role === "leader" ? "role-leader" : "");
              cell(tr, String(m.term), "mono");
              cell(tr, String(m.commit), "mono");
              cell(tr, String(m.applied), "mono");
              cell(tr, String(Math.max(0, top - m.applied)), "mono");
              cell(tr, m.reachable ? "yes" : "no", m.reachable ? "" : "unreachable");
              cell(tr, m.api, "mono");
              cell(tr, m.admin, "mono");
              rows.push(tr);
            });
            body.replaceChildren.apply(body, rows);
            leaderCell.textContent = view.leader === null || view.leader === undefined ? "none" : view.leader;
            updated.textContent = new Date().toISOString();
          }
          function poll() {
            fetch("/cluster", { headers: { "Accept": "application/json" }, cache: "no-store" })
              .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
              .then(render)
              .catch(function (e) { updated.textContent = "refresh failed: " + e.message; })
              .finally(function () { setTimeout(poll, 1000); });
          }
          setTimeout(poll, 1000);
        })();
        """
}
