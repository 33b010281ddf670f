//! A real browser for the dashboard's tests: Debian's `chromium` driven
//! through `chromedriver`, or Debian's `firefox-esr` through `geckodriver`
//! (WebDriver, on loopback). Controls are found the way people and screen
//! readers find them: by role and by the accessible name the browser itself
//! computes (WebDriver's "computed label").

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::elements::{Element, ElementRef};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// Where chromedriver is, unless `EVISTREAM_CHROMEDRIVER` says otherwise.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where chromium is, unless `EVISTREAM_CHROMIUM` says otherwise.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Firefox is, unless `EVISTREAM_FIREFOX` says otherwise.
const FIREFOX: &str = "/usr/bin/firefox-esr";
/// How long a wait for something on the page lasts.
pub const WAIT: Duration = Duration::from_secs(90);

/// The browser a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Debian's chromium through chromedriver.
    Chromium,
    /// Debian's firefox-esr through geckodriver (`cargo install geckodriver`).
    Firefox,
}

/// CSS for the elements of each ARIA role the tests ask for.
fn role_css(role: &str) -> &'static str {
    match role {
        "button" => "button, input[type=submit], input[type=button], [role=button]",
        "link" => "a[href]",
        "textbox" => {
            "input:not([type]), input[type=text], input[type=email], input[type=password], \
             input[type=url], input[type=search], textarea"
        }
        "combobox" => "select",
        "checkbox" => "input[type=checkbox]",
        "file" => "input[type=file]",
        "progressbar" => "[role=progressbar], progress",
        "table" => "table",
        "alert" => "[role=alert]",
        "status" => "[role=status]",
        _ => "*",
    }
}

/// One browser: a WebDriver process and its session.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    /// Which browser this is.
    pub engine: Engine,
    driver: tokio::process::Child,
    webdriver: String,
    session: String,
    http: reqwest::Client,
    shots: PathBuf,
    shot_seq: usize,
    /// Firefox: geckodriver's output (the browser's console goes there),
    /// and how much of it was read.
    console: Option<(PathBuf, std::sync::atomic::AtomicU64)>,
}

/// The chromedriver binary, or an error that says how to get it.
fn chromedriver() -> anyhow::Result<PathBuf> {
    let p = std::env::var("EVISTREAM_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
    let p = PathBuf::from(p);
    if !p.is_file() {
        bail!(
            "{} not found: the dashboard's browser tests need Debian's chromium and chromedriver \
             (apt-get install chromium chromium-driver; tests/scripts/ensure-tools.sh installs them)",
            p.display()
        );
    }
    Ok(p)
}

/// The geckodriver binary (`EVISTREAM_GECKODRIVER`, else cargo's bin
/// directory, else the PATH) and Firefox, or an error that says how to get
/// them.
fn geckodriver() -> anyhow::Result<(PathBuf, String)> {
    let how = "the dashboard's Firefox test needs Debian's firefox-esr and geckodriver \
               (apt-get install firefox-esr; cargo install --locked geckodriver; \
               tests/scripts/ensure-tools.sh installs both)";
    let cargo_bin = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin/geckodriver"));
    let found = match std::env::var("EVISTREAM_GECKODRIVER") {
        Ok(p) => Some(PathBuf::from(p)),
        Err(_) => cargo_bin.ok().filter(|p| p.is_file()).or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join("geckodriver"))
                    .find(|p| p.is_file())
            })
        }),
    };
    let driver = found
        .filter(|p| p.is_file())
        .with_context(|| format!("geckodriver not found: {how}"))?;
    let firefox = std::env::var("EVISTREAM_FIREFOX").unwrap_or_else(|_| FIREFOX.into());
    if !Path::new(&firefox).is_file() {
        bail!("{firefox} not found: {how}");
    }
    Ok((driver, firefox))
}

/// A free loopback port.
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Browser {
    /// Starts chromedriver and a headless chromium window of 1400 × 1000;
    /// screenshots go to `shots`.
    pub async fn launch(shots: &Path) -> anyhow::Result<Self> {
        Self::launch_engine(Engine::Chromium, shots).await
    }

    /// Starts `engine`'s driver and a headless window of 1400 × 1000;
    /// screenshots go to `shots`.
    pub async fn launch_engine(engine: Engine, shots: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(shots)?;
        let port = free_port()?;
        let (mut command, caps, console) = match engine {
            Engine::Chromium => {
                let mut c = tokio::process::Command::new(chromedriver()?);
                c.arg(format!("--port={port}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let chromium =
                    std::env::var("EVISTREAM_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
                let caps = json!({
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                                 "--no-first-run", "--disable-extensions"],
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                });
                (c, caps, None)
            }
            Engine::Firefox => {
                let (driver, firefox) = geckodriver()?;
                // geckodriver has no browser-log endpoint: Firefox writes its
                // console to its output (the prefs below), which geckodriver
                // passes on to this file.
                let log = shots.join(format!("geckodriver-{port}.log"));
                let out = std::fs::File::create(&log)?;
                let mut c = tokio::process::Command::new(driver);
                c.arg("--port")
                    .arg(port.to_string())
                    .arg("--websocket-port")
                    .arg(free_port()?.to_string())
                    .stdout(Stdio::from(out.try_clone()?))
                    .stderr(Stdio::from(out));
                let caps = json!({
                    "browserName": "firefox",
                    "moz:firefoxOptions": {
                        "binary": firefox,
                        "args": ["-headless"],
                        "prefs": {
                            "devtools.console.stdout.content": true,
                            // Offline: experiments would log failed syncs.
                            "app.normandy.enabled": false,
                            "messaging-system.rsexperimentloader.enabled": false,
                            "browser.shell.checkDefaultBrowser": false,
                            "browser.startup.homepage_override.mstone": "ignore",
                        },
                    },
                });
                (c, caps, Some((log, std::sync::atomic::AtomicU64::new(0))))
            }
        };
        let driver = command
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {engine:?} WebDriver"))?;
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{webdriver}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("the {engine:?} WebDriver did not answer on {webdriver}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object"),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .with_context(|| format!("starting a {engine:?} session"))?;
        if engine == Engine::Firefox {
            client.set_window_size(1400, 1000).await?;
        }
        let session = client
            .session_id()
            .await?
            .context("WebDriver gave no session id")?;
        Ok(Self {
            client,
            engine,
            driver,
            webdriver,
            session,
            http,
            shots: shots.to_owned(),
            shot_seq: 0,
            console,
        })
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        Ok(self.client.goto(url).await?)
    }

    /// The accessible name Chromium computes for an element.
    async fn name_of(&self, e: &Element) -> anyhow::Result<String> {
        let id: ElementRef = e.element_id();
        let r: Value = self
            .http
            .get(format!(
                "{}/session/{}/element/{}/computedlabel",
                self.webdriver, self.session, &*id
            ))
            .send()
            .await?
            .json()
            .await?;
        Ok(r["value"].as_str().unwrap_or_default().trim().to_owned())
    }

    /// Visible elements of `role` named exactly `name`, inside `within`
    /// (a CSS selector) when given.
    pub async fn all_by_role(
        &self,
        within: Option<&str>,
        role: &str,
        name: &str,
    ) -> anyhow::Result<Vec<Element>> {
        let css = match within {
            Some(w) => role_css(role)
                .split(", ")
                .map(|c| format!("{w} {c}"))
                .collect::<Vec<_>>()
                .join(", "),
            None => role_css(role).to_owned(),
        };
        let mut out = Vec::new();
        for e in self.client.find_all(fantoccini::Locator::Css(&css)).await? {
            // A file input is usually hidden behind its label; the rest must show.
            if role != "file" && !e.is_displayed().await.unwrap_or(false) {
                continue;
            }
            let mut computed = self.name_of(&e).await.unwrap_or_default();
            // Firefox names a file input by its label plus its own button and
            // status ("Upload PDFs Browse… No files selected.").
            if self.engine == Engine::Firefox
                && role == "file"
                && let Some(i) = computed.find(" Browse…")
            {
                computed.truncate(i);
            }
            if computed == name {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Waits for the first visible element of `role` named `name`.
    pub async fn find(&self, role: &str, name: &str) -> anyhow::Result<Element> {
        self.find_in(None, role, name).await
    }

    /// As [`find`](Self::find), inside the elements `within` selects.
    pub async fn find_in(
        &self,
        within: Option<&str>,
        role: &str,
        name: &str,
    ) -> anyhow::Result<Element> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self
                .all_by_role(within, role, name)
                .await?
                .into_iter()
                .next()
            {
                return Ok(e);
            }
            if Instant::now() > deadline {
                bail!(
                    "no {role} named {name:?}{} on {}",
                    within.map(|w| format!(" in {w}")).unwrap_or_default(),
                    self.client.current_url().await?
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Clicks the control of `role` named `name`.
    pub async fn click(&self, role: &str, name: &str) -> anyhow::Result<()> {
        self.on_fresh(role, name, |e| async move { e.click().await })
            .await
    }

    /// Types `text` into the textbox (or combobox, file input) named `name`,
    /// replacing what it held.
    pub async fn fill(&self, role: &str, name: &str, text: &str) -> anyhow::Result<()> {
        self.on_fresh(role, name, |e| async move {
            if role == "textbox" {
                e.clear().await?;
            }
            e.send_keys(text).await
        })
        .await
    }

    /// Runs `act` on the control of `role` named `name`, finding it again
    /// when the page redrew it between the finding and the acting (a stale
    /// element).
    async fn on_fresh<F, Fut>(&self, role: &str, name: &str, act: F) -> anyhow::Result<()>
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let mut tries = 0;
        loop {
            let e = self.find(role, name).await?;
            match act(e).await {
                Err(err) if err.is_stale_element_reference() && tries < 5 => tries += 1,
                done => return Ok(done?),
            }
        }
    }

    /// Presses and releases `key` as a real key event (to the focused
    /// element, the page when none is).
    pub async fn press(&self, key: char) -> anyhow::Result<()> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(actions).await?;
        Ok(())
    }

    /// Runs `script` in the page until it returns something truthy; that value.
    pub async fn wait_js(
        &self,
        what: &str,
        script: &str,
        args: Vec<Value>,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.client.execute(script, args.clone()).await?;
            let truthy = match &v {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("waited {WAIT:?} for {what}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until the page's visible text contains `text`.
    pub async fn wait_text(&self, text: &str) -> anyhow::Result<()> {
        self.wait_js(
            &format!("the text {text:?}"),
            "return document.body.innerText.includes(arguments[0]);",
            vec![json!(text)],
        )
        .await
        .map(|_| ())
    }

    /// Whether any visible control of `role` is named `name` now.
    pub async fn has(&self, role: &str, name: &str) -> anyhow::Result<bool> {
        Ok(!self.all_by_role(None, role, name).await?.is_empty())
    }

    /// Saves a screenshot as `NN-name.png`; returns its path.
    pub async fn shot(&mut self, name: &str) -> anyhow::Result<PathBuf> {
        self.shot_seq += 1;
        let png = self.client.screenshot().await?;
        let path = self.shots.join(format!("{:02}-{name}.png", self.shot_seq));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Console messages at error level (errors, failed loads, CSP
    /// violations) since the last call.
    pub async fn console_errors(&self) -> anyhow::Result<Vec<String>> {
        if let Some((log, read)) = &self.console {
            use std::sync::atomic::Ordering;
            let text = std::fs::read(log)?;
            let from = (read.swap(text.len() as u64, Ordering::SeqCst) as usize).min(text.len());
            return Ok(firefox_errors(&String::from_utf8_lossy(&text[from..])));
        }
        let r: Value = self
            .http
            .post(format!(
                "{}/session/{}/se/log",
                self.webdriver, self.session
            ))
            .json(&json!({ "type": "browser" }))
            .send()
            .await?
            .json()
            .await?;
        Ok(r["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver
    /// (`Network.setCacheDisabled`, `Page.addScriptToEvaluateOnNewDocument`).
    pub async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        let r: Value = self
            .http
            .post(format!(
                "{}/session/{}/goog/cdp/execute",
                self.webdriver, self.session
            ))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await?
            .json()
            .await?;
        if r["value"]["error"].is_string() {
            bail!("{cmd}: {}", r["value"]["message"]);
        }
        Ok(r["value"].clone())
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// The errors of the page in a stretch of Firefox's output: each
/// `console.error` (printed with `devtools.console.stdout.content`) and
/// uncaught exception or rejection, by its first line; not the browser's
/// own, whose message or stack (the lines up to the next message or blank
/// line) names `resource://` or `chrome://` code. Firefox prints neither
/// CSP violations nor failed loads there: the Chromium tests catch those.
fn firefox_errors(text: &str) -> Vec<String> {
    let starts = |l: &str| l.starts_with("console.") || l.starts_with("JavaScript ");
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(first) = lines.next() {
        if !starts(first) {
            continue;
        }
        let mut own = first.contains("resource://") || first.contains("chrome://");
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() || starts(next) {
                break;
            }
            own |= next.contains("resource://") || next.contains("chrome://");
            lines.next();
        }
        let error = first.starts_with("console.error:") || first.starts_with("JavaScript error:");
        if error && !own {
            out.push(first.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::firefox_errors;

    #[test]
    fn firefox_errors_are_the_pages_not_the_browsers() {
        // As Firefox 153 printed them, for pages and for itself.
        let out = r#"*** You are running in headless mode.
console.error: RSLoader: 
  Failed to retrieve recipes from Remote Settings
  Stack:
    RemoteSettingsSyncError@resource://nimbus/lib/RemoteSettingsExperimentLoader.sys.mjs:1570:5

console.error: "boom from console.error"
console.error: [Exception... "NS_ERROR_CONTENT_BLOCKED"  location: "JS frame :: resource:///modules/FaviconLoader.sys.mjs :: load :: line 236"  data: no]
console.error: (new Error("an error object", "http://127.0.0.1:8765/m.js", 1))
console.log: "fine"
[Parent 27918, Main Thread] WARNING: g_type_add_interface_static: assertion failed
JavaScript error: chrome://global/content/x.js, line 1: TypeError
JavaScript error: http://127.0.0.1:8765/a.js, line 2: Error: uncaught thing
JavaScript warning: http://127.0.0.1:8765/a.js, line 3: unreachable code
"#;
        assert_eq!(
            firefox_errors(out),
            [
                r#"console.error: "boom from console.error""#,
                r#"console.error: (new Error("an error object", "http://127.0.0.1:8765/m.js", 1))"#,
                "JavaScript error: http://127.0.0.1:8765/a.js, line 2: Error: uncaught thing",
            ]
        );
    }
}
