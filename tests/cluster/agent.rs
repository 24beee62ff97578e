//! The agent page (`/agent`) clicked through in headless Chromium over
//! WebDriver, on a phone-sized window, against a running andon: look a
//! product up (typed, Enter), report a customer's complaint (counted: 1 of
//! 2), then pull the cord for the next customer with the keyboard alone
//! (Tab to the button, Enter) and see the product go off sale, its andon
//! on the page and the delist command on the topic. A screenshot is kept
//! in `tests/artifacts/agent.png`.

use std::path::Path;
use std::time::Duration;

use crate::common::webdriver::Browser;
use crate::common::*;

const ENTER: &str = "\u{E007}";
const TAB: &str = "\u{E004}";

#[test]
#[ignore = "needs chromium and chromedriver: scripts/test installs them"]
fn an_agent_reports_a_complaint_and_pulls_the_cord_on_the_agent_page() {
    let _lock = shared(On::Mock);
    let (_cluster, bootstrap) = cluster(On::Mock, 2);
    let rules = "[rules.default]\nthreshold = 2\nwindow = \"1h\"\nroute = [\"product\"]\n[[rules.issue]]\nissues = [\"print_defect\"]\n[owners.product]\nsla = \"30d\"\n";
    let member = Running::with_view(&settings(&bootstrap, rules), andon::kafka::RunOptions::default());
    eventually(Duration::from_secs(60), "ready", || member.get("/readyz").0 == 200);
    let (code, page) = member.get("/agent");
    assert_eq!(code, 200);
    assert!(page.contains(r#"const KNOWN_ISSUES = ["print_defect"];"#), "the rules' issues are offered");

    let browser = Browser::start(390, 844);
    browser.open(&format!("http://{}/agent", member.addr()));
    browser.type_into("#subject-id", &format!("AGENT1{ENTER}"));
    browser.wait_text("#standing", Duration::from_secs(15), "the lookup answers", |t| t == "on sale");

    // A report: counted once the engine has it (the page looks again).
    browser.type_into("#customer", "ann");
    browser.type_into("#issue", "print_defect");
    browser.click("#report-button");
    browser.wait_text("#message", Duration::from_secs(15), "the report is accepted", |t| t.starts_with("Reported"));
    browser.wait_text("#issues", Duration::from_secs(15), "the complaint is counted", |t| t.contains("1 of 2"));

    // The next caller: the cord, with the keyboard alone. From the
    // customer field, Tab passes issue, channel and the report button and
    // lands on the pull; Enter pulls.
    browser.type_into("#customer", &format!("bob{TAB}{TAB}{TAB}{TAB}"));
    let focused = browser.script("return document.activeElement && document.activeElement.id");
    assert_eq!(focused.as_str(), Some("pull-button"), "Tab reaches the pull button");
    browser.type_into("#pull-button", ENTER);
    browser.wait_text("#message", Duration::from_secs(15), "the pull is accepted", |t| t.starts_with("Cord pulled"));
    browser.wait_text("#standing", Duration::from_secs(20), "the product goes off sale", |t| t == "OFF SALE");
    let andons = browser.text("#andons");
    assert!(andons.contains("print_defect (manual)") && andons.contains("product"), "its andon is shown: {andons}");
    browser.screenshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/agent.png"));

    let delists: Vec<serde_json::Value> = read_all(&bootstrap, "andon.delist-commands")
        .iter()
        .map(Record::json)
        .filter(|c| c["action"] == "delist" && c["subject"]["id"] == "AGENT1")
        .collect();
    assert_eq!(delists.len(), 1, "one delist command on the topic: {delists:?}");
    let complaints = read_all(&bootstrap, "andon.complaints");
    assert_eq!(complaints.len(), 2, "the two complaints the page posted");
    let pulled: Vec<serde_json::Value> = complaints.iter().map(Record::json).collect();
    assert_eq!(pulled[1]["pull"], true, "the second is a manual pull: {pulled:?}");
    assert_eq!(pulled[1]["customer_id"], "bob");
    assert_eq!(pulled[1]["channel"], "phone");
    member.stop();
}
