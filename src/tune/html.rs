//! `--html FILE`: the report as one self-contained page an operator can
//! mail around. The report's JSON, the page's script and uPlot (the chart
//! library the status page bundles, `src/ops/vendor/`) are all inside it,
//! so it opens without network access. Per issue: the recommendation, the
//! chart that matters (bad-pull rate at its worst against customers hurt,
//! a point per candidate, the target line, the rules in force and the
//! recommendation marked) and the table.

use std::io::{self, Write};

use super::report::Report;

const PAGE: &str = include_str!("report.html");
const UPLOT_JS: &str = include_str!("../ops/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../ops/vendor/uplot/uPlot.min.css");

/// Writes the page for `report` to `w`.
pub fn write_html(report: &Report, w: &mut impl Write) -> io::Result<()> {
    // Inside <script> nothing may read as a closing tag: JSON allows `\/`
    // for `/`, and issue names cannot hold `<` anyway.
    let json = serde_json::to_string(report).map_err(io::Error::from)?.replace("</", "<\\/");
    let page = PAGE.replacen("/*UPLOT_CSS*/", UPLOT_CSS, 1).replacen("/*UPLOT_JS*/", UPLOT_JS, 1).replacen(
        "/*REPORT_JSON*/",
        &json,
        1,
    );
    w.write_all(page.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_its_library_and_data_and_fetches_nothing() {
        let report = Report {
            complaints_read: 3,
            updates_read: 0,
            rejected: Default::default(),
            target: 0.02,
            replays: 1,
            issues: vec![],
        };
        let mut out = Vec::new();
        write_html(&report, &mut out).expect("in memory");
        let page = String::from_utf8(out).expect("UTF-8");
        assert!(page.contains(UPLOT_JS) && page.contains(UPLOT_CSS));
        assert!(page.contains(r#""complaints_read":3"#));
        assert!(!page.contains("/*REPORT_JSON*/") && !page.contains("/*UPLOT_JS*/"));
        for external in ["src=\"http", "href=\"http", "<link", "fetch("] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
