//! The HTML page of `resnetc graph --format html` in a real browser: headless Chromium
//! (Debian's `chromium` package, which `scripts/setup.sh` installs) opens resnet50's page
//! from `file://`, and real mouse clicks and typing fold a stage, open a block, pick a
//! layer, search the table and pick a row; what the page shows is checked against
//! `resnetc table --format json`, and a PNG screenshot of each step is kept under
//! `target/tmp/browser/`.
//!
//! The browser is driven over the Chrome DevTools Protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages ended by NUL on file descriptors 3 and 4), so
//! the test needs nothing but the browser: no chromedriver, no Selenium, no WebSocket.
//!
//! Without a `chromium` on `PATH` (or `RESNETC_CHROMIUM`) the test says so and passes,
//! unless `RESNETC_REQUIRE_BROWSER` is set, as `scripts/test.sh` sets it: there it fails.

mod common;

use resnetc::back::table::{shape_list, thousands};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The browser to drive: `RESNETC_CHROMIUM`, else the first Chromium on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RESNETC_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A headless Chromium and one page in it, spoken to over the DevTools pipe.
struct Browser {
    child: Child,
    input: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Every event received so far (requests, exceptions, console messages).
    events: Vec<Value>,
}

const WAIT: Duration = Duration::from_secs(20);

impl Browser {
    fn launch(exe: &Path, profile: &Path, log: &Path) -> Browser {
        // The shell hands the browser our pipes as its descriptors 3 (commands in) and 4
        // (replies out), as `--remote-debugging-pipe` expects.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--window-size=1400,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            // Chromium's own temporary folders go beside the profile, removed with it.
            .env("TMPDIR", profile.parent().expect("the profile is in a folder"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("browser log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let input = child.stdin.take().expect("piped stdin");
        let mut output = child.stdout.take().expect("piped stdout");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buf = [0u8; 1 << 16];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice(&message[..end]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            input,
            messages,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        for domain in ["Page.enable", "Runtime.enable", "Network.enable"] {
            b.call(domain, json!({}));
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    /// Sends one command (to the page once attached) and waits for its reply.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).expect("write to the browser");
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(v) if v["id"] == json!(id) => {
                    assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
                Ok(v) => self.events.push(v),
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no reply in {WAIT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: the browser has gone"),
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until a JavaScript expression is true.
    fn wait_for(&mut self, expression: &str) {
        let deadline = Instant::now() + WAIT;
        while self.eval(expression) != json!(true) {
            assert!(
                Instant::now() < deadline,
                "still not true after {WAIT:?}: {expression}\nscript errors: {:?}",
                self.errors()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The page's uncaught exceptions and console errors so far.
    fn errors(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| {
                e["method"] == json!("Runtime.exceptionThrown")
                    || (e["method"] == json!("Runtime.consoleAPICalled")
                        && e["params"]["type"] == json!("error"))
            })
            .collect()
    }

    /// The centre of the element an expression finds, scrolled into view.
    fn centre(&mut self, element: &str) -> (f64, f64) {
        let at = self.eval(&format!(
            "(() => {{ const e = {element}; if (!e) return null; e.scrollIntoView({{block: 'center', inline: 'center'}}); \
             const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ));
        let at = at
            .as_array()
            .unwrap_or_else(|| panic!("no element {element}"));
        (at[0].as_f64().unwrap(), at[1].as_f64().unwrap())
    }

    /// Moves the mouse to an element and clicks it, as a person would.
    fn click(&mut self, element: &str) {
        let (x, y) = self.centre(element);
        self.hover_at(x, y);
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    fn hover_at(&mut self, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        );
    }

    /// Saves what the window shows as a PNG.
    fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64_decode(shot["data"].as_str().expect("image data"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// The details panel: field name -> text.
    fn details(&mut self) -> Value {
        self.eval(
            "Object.fromEntries(Array.from(document.querySelectorAll('#details dd[data-field]'), \
             d => [d.dataset.field, d.textContent]))",
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (the screenshot's encoding), padding allowed.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {:?}", c as char),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// What `resnetc table --format json` says of resnet50.
fn table_json() -> Value {
    let o = common::resnetc(&[
        "table",
        common::root().join("specs/resnet50.yaml").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    serde_json::from_str(&o.stdout).expect("JSON")
}

/// The spec line (1-based) that contains `needle`, and its text.
fn spec_line(spec: &str, needle: &str) -> (usize, String) {
    let text = std::fs::read_to_string(common::root().join(spec)).unwrap();
    text.lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .unwrap_or_else(|| panic!("no line with {needle} in {spec}"))
}

/// The sums of a block's rows: its layers (`layer2.0.*`) and its addition (`layer2.0`).
fn block_sums(table: &Value, block: &str) -> (u64, u64) {
    let prefix = format!("{block}.");
    table["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"] == json!(block) || l["name"].as_str().unwrap().starts_with(&prefix))
        .fold((0, 0), |(p, m), l| {
            (
                p + l["params"].as_u64().unwrap(),
                m + l["macs"].as_u64().unwrap(),
            )
        })
}

fn layer<'a>(table: &'a Value, name: &str) -> &'a Value {
    table["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == json!(name))
        .unwrap_or_else(|| panic!("no layer {name}"))
}

fn as_shape(v: &Value) -> String {
    let dims: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect();
    shape_list(&dims)
}

#[test]
fn the_page_of_resnet50_works_in_chromium() {
    let Some(exe) = chromium() else {
        assert!(
            std::env::var_os("RESNETC_REQUIRE_BROWSER").is_none(),
            "RESNETC_REQUIRE_BROWSER is set but there is no chromium on PATH: run scripts/setup.sh (Debian's `chromium` package)"
        );
        eprintln!("SKIPPED the browser test: no chromium on PATH (scripts/setup.sh installs it; RESNETC_REQUIRE_BROWSER=1 makes this a failure)");
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let spec = "specs/resnet50.yaml";
    let page = dir.path().join("resnet50.html");
    // Named as a user in the repository names it (tests run there), as the page shows it.
    let o = common::resnetc(&[
        "graph",
        spec,
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let table = table_json();
    let spec_name = spec.to_string();

    let mut b = Browser::launch(
        &exe,
        &dir.path().join("profile"),
        &shots.join("chromium.log"),
    );
    let url = format!("file://{}", page.display());
    b.call("Page.navigate", json!({"url": url}));
    b.wait_for(
        "document.readyState === 'complete' && !!document.getElementById('count').textContent",
    );
    let layers = table["layers"].as_array().unwrap().len();
    assert_eq!(
        b.eval("document.getElementById('count').textContent"),
        json!(format!("{layers} layers"))
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#layer-table tbody tr').length"),
        json!(layers)
    );
    b.screenshot(&shots.join("1-opened.png"));

    // Fold the stage conv3_x: its blocks go, its title bar stays and shows its Table-1 row.
    let bar = "document.querySelector('section.group[data-group=\"stage/layer2\"] > .gbar')";
    b.click(bar);
    b.wait_for("document.querySelector('section.group[data-group=\"stage/layer2\"]').classList.contains('folded')");
    assert_eq!(
        b.eval("document.querySelector('section.group[data-group=\"stage/layer2\"] > .units').getClientRects().length"),
        json!(0),
        "a folded stage hides its blocks"
    );
    let stage = &table["stages"][1];
    let (line, text) = spec_line(spec, "stage: conv3_x");
    assert_eq!(
        b.details(),
        json!({
            "kind": "stage",
            "name": "conv3_x",
            "op": "[1x1, 128; 3x3, 128; 1x1, 512], /2  x4",
            "output": as_shape(&stage["output"]),
            "params": thousands(stage["params"].as_u64().unwrap()),
            "macs": thousands(stage["macs"].as_u64().unwrap()),
            "spec": format!("{spec_name}:{line}  {text}"),
        })
    );
    assert_eq!(stage["name"], json!("conv3_x"));
    b.screenshot(&shots.join("2-stage-folded.png"));
    b.click(bar);
    b.wait_for("!document.querySelector('section.group[data-group=\"stage/layer2\"]').classList.contains('folded')");

    // Open the block layer2.0: its layers and its projection appear; the panel sums them.
    b.click("document.querySelector('[data-block=\"block/layer2.0\"] > svg.v-closed .block-closed rect')");
    b.wait_for("document.querySelector('[data-block=\"block/layer2.0\"] > svg.v-open').getClientRects().length > 0");
    let (params, macs) = block_sums(&table, "layer2.0");
    let d = b.details();
    assert_eq!(d["kind"], json!("block"));
    assert_eq!(d["name"], json!("layer2.0"));
    assert_eq!(d["op"], json!("bottleneck block, projection 1x1, 512, /2"));
    assert_eq!(
        d["output"],
        json!(as_shape(&layer(&table, "layer2.0")["output"]))
    );
    assert_eq!(d["params"], json!(thousands(params)));
    assert_eq!(d["macs"], json!(thousands(macs)));
    assert_eq!(d["spec"], json!(format!("{spec_name}:{line}  {text}")));
    b.screenshot(&shots.join("3-block-open.png"));

    // Pick a layer in it: the panel shows its row of the table, and the row is marked.
    b.click("document.querySelector('[data-block=\"block/layer2.0\"] > svg.v-open [data-id=\"layer2.0.conv2\"] rect')");
    let row = layer(&table, "layer2.0.conv2");
    assert_eq!(
        b.details(),
        json!({
            "kind": "layer",
            "name": "layer2.0.conv2",
            "op": row["op"],
            "output": as_shape(&row["output"]),
            "params": thousands(row["params"].as_u64().unwrap()),
            "macs": thousands(row["macs"].as_u64().unwrap()),
            "spec": format!("{spec_name}:{line}  {text}"),
        })
    );
    assert_eq!(
        b.eval("Array.from(document.querySelectorAll('#layer-table tr.sel'), r => r.cells[0].textContent)"),
        json!(["layer2.0.conv2"])
    );
    // Hovering shows the same in a tooltip.
    let (x, y) = b.centre("document.querySelector('[data-block=\"block/layer2.0\"] > svg.v-open [data-id=\"layer2.0.downsample.0\"] rect')");
    b.hover_at(x, y);
    let tip = b.eval(
        "document.getElementById('tip').hidden ? '' : document.getElementById('tip').textContent",
    );
    let down = layer(&table, "layer2.0.downsample.0");
    assert!(
        tip.as_str().unwrap().starts_with(&format!(
            "layer2.0.downsample.0  {}",
            down["op"].as_str().unwrap()
        )),
        "{tip}"
    );
    b.screenshot(&shots.join("4-layer.png"));

    // Search the table.
    b.click("document.getElementById('search')");
    b.call("Input.insertText", json!({"text": "Downsample"}));
    let hits = table["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            let hit = |k: &str| l[k].as_str().unwrap().to_lowercase().contains("downsample");
            hit("name") || hit("op")
        })
        .count();
    assert_eq!(hits, 8);
    b.wait_for(&format!(
        "document.getElementById('count').textContent === '{hits} of {layers} layers'"
    ));
    assert_eq!(
        b.eval("Array.from(document.querySelectorAll('#layer-table tbody tr'), r => r.hidden).filter(h => !h).length"),
        json!(hits)
    );
    b.screenshot(&shots.join("5-search.png"));

    // A row of the table finds its layer: the stage unfolds, the block opens, the box
    // comes into view, marked.
    b.click("Array.from(document.querySelectorAll('#layer-table tbody tr')).find(r => r.cells[0].textContent === 'layer4.0.downsample.1')");
    let found = b.eval(
        "(() => { const e = Array.from(document.querySelectorAll('#drawing [data-id=\"layer4.0.downsample.1\"]')).find(e => e.getClientRects().length); \
         if (!e) return null; const r = e.getBoundingClientRect(); const d = document.getElementById('drawing').getBoundingClientRect(); \
         return {sel: e.classList.contains('sel'), inside: r.top >= d.top && r.bottom <= d.bottom}; })()",
    );
    assert_eq!(found, json!({"sel": true, "inside": true}));
    assert_eq!(b.details()["name"], json!("layer4.0.downsample.1"));
    b.screenshot(&shots.join("6-row-found.png"));

    // With every block open, no two boxes of the page overlap.
    b.click("document.getElementById('open-all')");
    let overlaps = b.eval(
        "(() => { const rs = Array.from(document.querySelectorAll('#drawing rect.box, #drawing circle.add, #drawing text.lbl'))\
         .map(e => e.getBoundingClientRect()).filter(r => r.width > 0); let n = 0;\
         for (let i = 0; i < rs.length; i++) for (let j = i + 1; j < rs.length; j++) {\
         const a = rs[i], b = rs[j]; if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) n++; }\
         return [rs.length, n]; })()",
    );
    assert!(overlaps[0].as_u64().unwrap() > 200, "{overlaps}");
    assert_eq!(
        overlaps[1],
        json!(0),
        "overlapping boxes with every block open"
    );
    b.screenshot(&shots.join("7-all-open.png"));

    // No script error, and nothing fetched but the page itself.
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    let fetched: Vec<&str> = b
        .events
        .iter()
        .filter(|e| e["method"] == json!("Network.requestWillBeSent"))
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .collect();
    assert_eq!(fetched, [url.as_str()]);
    eprintln!(
        "browser test: {:.1} s, screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
