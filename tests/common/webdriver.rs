//! Just enough of the W3C WebDriver protocol to click through a page in
//! headless Chromium: `chromedriver` (Debian's `chromium-driver`, which
//! scripts/test installs) on a port of its choosing, one session, elements found by
//! CSS selector, typed into, clicked, read; a screenshot for the test's
//! artifacts. Plain HTTP/1.1 with JSON bodies, as the protocol is.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A browser session; the driver is stopped when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

/// WebDriver's element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session, `width` ×
    /// `height` pixels.
    pub fn start(width: u32, height: u32) -> Self {
        use std::io::BufRead;
        // Port 0: chromedriver takes a free one (on 127.0.0.1 and ::1
        // both, which a port found free on one alone need not be) and says
        // which on stdout.
        let mut driver = Command::new(super::need_tool("chromedriver"))
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut lines = std::io::BufReader::new(driver.stdout.take().expect("stdout")).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("started successfully on port ").nth(1).and_then(|p| p.trim_end_matches('.').parse().ok())
            })
            .expect("chromedriver says its port");
        // Its later lines, read so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let mut b = Browser { driver, port, session: String::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.call("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver answers on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let chromium = super::need_tool("chromium");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}")],
            },
        }}});
        let v = b.call("POST", "/session", Some(caps)).expect("a session");
        b.session = v["sessionId"].as_str().expect("sessionId").to_owned();
        b
    }

    /// One command: its `value`, or the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open whatever the request
        // says: read the head, then exactly Content-Length bytes.
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let (head, body) = loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                while raw.len() < end + 4 + length {
                    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                break (head, String::from_utf8_lossy(&raw[end + 4..]).into_owned());
            }
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("no HTTP answer".into());
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if head.split(' ').nth(1) != Some("200") {
            return Err(format!("{method} {path}: {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url }))).expect("navigate");
    }

    /// The element matching `css`, if there is one now.
    fn find(&self, css: &str) -> Option<String> {
        let v = self.session_call("POST", "/element", Some(json!({"using": "css selector", "value": css}))).ok()?;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    fn element(&self, css: &str) -> String {
        self.find(css).unwrap_or_else(|| {
            let url = self.session_call("GET", "/url", None);
            let why = self.session_call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
            panic!("an element {css} on the page at {url:?}: {why:?}")
        })
    }

    /// Types `keys` into the element (appended to what it holds).
    /// `"\u{E007}"` is Enter.
    pub fn type_into(&self, css: &str, keys: &str) {
        let e = self.element(css);
        self.session_call("POST", &format!("/element/{e}/value"), Some(json!({ "text": keys }))).expect("type");
    }

    pub fn click(&self, css: &str) {
        let e = self.element(css);
        self.session_call("POST", &format!("/element/{e}/click"), Some(json!({}))).expect("click");
    }

    /// The rendered text of the element ("" if it is not there).
    pub fn text(&self, css: &str) -> String {
        let Some(e) = self.find(css) else { return String::new() };
        self.session_call("GET", &format!("/element/{e}/text"), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Runs `js` in the page (a function body: `return ...`); its value.
    pub fn script(&self, js: &str) -> Value {
        self.session_call("POST", "/execute/sync", Some(json!({"script": js, "args": []}))).expect("script")
    }

    /// Waits until the element's text satisfies `f`; the last text seen.
    pub fn wait_text(&self, css: &str, timeout: Duration, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.text(css);
            if f(&t) {
                return t;
            }
            assert!(Instant::now() < deadline, "{what}: {css} reads {t:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let v = self.session_call("GET", "/screenshot", None).expect("screenshot");
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("base64")).expect("png");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("artifacts dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
