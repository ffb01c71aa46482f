//! A local fake of the Lambda Runtime API, a handle on the trigger process, and the event fixtures,
//! shared by the `trigger_*` modules of the integration tests.
//!
//! Why: `lambda_runtime` talks HTTP/1.1 to `AWS_LAMBDA_RUNTIME_API`; serving that API from the test
//! runs the real binary exactly as Lambda would, on loopback, without Docker or AWS. The server
//! (std::net, one thread per connection) serves `GET /2018-06-01/runtime/invocation/next` from a
//! queue of events with the `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` and
//! `Lambda-Runtime-Invoked-Function-Arn` headers, and records `POST …/{id}/response`,
//! `…/{id}/error` and `…/init/error`. Every wait is bounded; the process is killed on drop.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const TRIGGER: &str = env!("CARGO_BIN_EXE_cognito-migrate-trigger");
pub const AUTH_EVENT: &str =
    include_str!("../../fixtures/trigger/migrate-user-authentication.json");
pub const FORGOT_EVENT: &str =
    include_str!("../../fixtures/trigger/migrate-user-forgot-password.json");
/// bcrypt cost 4 of [`BCRYPT4_PASSWORD`] (a reference vector).
pub const BCRYPT4: &str = "$2b$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i";
pub const BCRYPT4_PASSWORD: &str = "correct horse";

/// One of AWS's documented events with another user and password.
pub fn event(template: &str, user: &str, password: Option<&str>) -> String {
    let mut v: serde_json::Value = serde_json::from_str(template).unwrap();
    v["userName"] = user.into();
    if let Some(p) = password {
        v["request"]["password"] = p.into();
    }
    v.to_string()
}
pub const WAIT: Duration = Duration::from_secs(30);

/// What the binary posted back for one invocation.
#[derive(Clone, Debug)]
pub struct Answer {
    pub id: String,
    /// `response`, `error` or `init-error`.
    pub kind: String,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<(String, String)>>,
    queue_cv: Condvar,
    answers: Mutex<Vec<Answer>>,
    answers_cv: Condvar,
    first_next: Mutex<Option<Instant>>,
    nexts: AtomicUsize,
    stop: AtomicBool,
}

/// A local fake of the Lambda Runtime API.
pub struct FakeRuntime {
    shared: Arc<Shared>,
    port: u16,
    next_id: AtomicUsize,
}

fn read_request(
    reader: &mut BufReader<TcpStream>,
) -> std::io::Result<Option<(String, String, String)>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Some((
        method,
        path,
        String::from_utf8_lossy(&body).to_string(),
    )))
}

fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some((method, path, body))) = read_request(&mut reader) {
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            {
                let mut first = shared.first_next.lock().unwrap();
                if first.is_none() {
                    *first = Some(Instant::now());
                }
            }
            shared.nexts.fetch_add(1, Ordering::SeqCst);
            let mut queue = shared.queue.lock().unwrap();
            let event = loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(e) = queue.pop_front() {
                    break e;
                }
                queue = shared
                    .queue_cv
                    .wait_timeout(queue, Duration::from_millis(200))
                    .unwrap()
                    .0;
            };
            drop(queue);
            let (id, body) = event;
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 5_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Lambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:cognito-migrate-trigger\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            if writer.write_all(head.as_bytes()).is_err()
                || writer.write_all(body.as_bytes()).is_err()
            {
                return;
            }
        } else if method == "POST" && path.contains("/runtime/") {
            let kind = if path.ends_with("/response") {
                "response"
            } else if path.ends_with("/init/error") {
                "init-error"
            } else {
                "error"
            };
            let id = path
                .trim_start_matches("/2018-06-01/runtime/invocation/")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            shared.answers.lock().unwrap().push(Answer {
                id,
                kind: kind.to_string(),
                body,
            });
            shared.answers_cv.notify_all();
            let ok = "{\"status\":\"OK\"}";
            let head = format!(
                "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                ok.len()
            );
            if writer.write_all(head.as_bytes()).is_err()
                || writer.write_all(ok.as_bytes()).is_err()
            {
                return;
            }
        } else {
            let head = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            if writer.write_all(head.as_bytes()).is_err() {
                return;
            }
        }
    }
}

impl FakeRuntime {
    pub fn start() -> FakeRuntime {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let accept_shared = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    let sh = accept_shared.clone();
                    std::thread::spawn(move || serve_connection(s, sh));
                }
            }
        });
        FakeRuntime {
            shared,
            port,
            next_id: AtomicUsize::new(1),
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Queues an event; returns its request id.
    pub fn invoke(&self, body: &str) -> String {
        let id = format!("req-{:06}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.shared
            .queue
            .lock()
            .unwrap()
            .push_back((id.clone(), body.to_string()));
        self.shared.queue_cv.notify_all();
        id
    }

    /// The first answer that `which` picks, waiting at most `timeout`.
    fn wait_for(&self, timeout: Duration, which: impl Fn(&Answer) -> bool) -> Option<Answer> {
        let deadline = Instant::now() + timeout;
        let mut answers = self.shared.answers.lock().unwrap();
        loop {
            if let Some(a) = answers.iter().find(|a| which(a)) {
                return Some(a.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            answers = self
                .shared
                .answers_cv
                .wait_timeout(answers, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// The answer to request `id`, waiting at most `timeout`.
    pub fn answer(&self, id: &str, timeout: Duration) -> Option<Answer> {
        self.wait_for(timeout, |a| a.id == id)
    }

    /// Sends an event and waits for its answer.
    pub fn call(&self, body: &str) -> Answer {
        let id = self.invoke(body);
        self.answer(&id, WAIT)
            .unwrap_or_else(|| panic!("no answer to {id} within {WAIT:?}"))
    }

    /// What the process posted to `/runtime/init/error`, waiting at most `timeout`.
    pub fn init_error(&self, timeout: Duration) -> Option<Answer> {
        self.wait_for(timeout, |a| a.kind == "init-error")
    }

    /// When the first `/next` request arrived, waiting at most `timeout`.
    pub fn first_next(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = *self.shared.first_next.lock().unwrap() {
                return Some(t);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.queue_cv.notify_all();
        // Unblock the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The trigger process; killed when dropped.
pub struct Trigger {
    pub child: Child,
    pub log: PathBuf,
}

impl Trigger {
    pub fn spawn(runtime: &FakeRuntime, env: &[(&str, &str)], log: &Path) -> Trigger {
        let log_file = std::fs::File::create(log).unwrap();
        let mut cmd = Command::new(TRIGGER);
        cmd.env("AWS_LAMBDA_RUNTIME_API", runtime.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "cognito-migrate-trigger")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env_remove("COGNITO_MIGRATE_DIRECTORY")
            .env_remove("COGNITO_MIGRATE_LEGACY_POOL_ID")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Trigger {
            child: cmd.spawn().expect("start cognito-migrate-trigger"),
            log: log.to_path_buf(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
