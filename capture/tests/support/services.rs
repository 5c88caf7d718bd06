//! Real services the end-to-end tests run: Debian's prometheus on loopback ports, plain
//! HTTP requests to them, and waiting until they are ready.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on (taken from the kernel, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` from 127.0.0.1:port (HTTP/1.0, one request): the body of a 200 response, else
/// an error holding the whole response.
pub fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200 ") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(out)),
    }
}

/// Kills the server it holds when dropped (a failed assertion too).
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Debian's prometheus on a loopback port, scraping itself every second and reading
/// from a remote that refuses connections (a remote read makes every query's Select merge
/// the local and the remote querier concurrently: the goroutines at merge.go).
pub fn prometheus(dir: &Path) -> (Server, u16) {
    let (port, remote) = (free_port(), free_port());
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
             remote_read:\n  - url: http://127.0.0.1:{remote}/api/v1/read\n    read_recent: true\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting prometheus (Debian package prometheus: run scripts/install-deps.sh)");
    let server = Server(child);
    ready(port, "/-/ready", &dir.join("prometheus.log"));
    (server, port)
}

/// Waits (at most 30 s) until `GET path` on `port` answers 200; `log` is the server's.
pub fn ready(port: u16, path: &str, log: &Path) {
    let t = Instant::now();
    while get(port, path).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "not ready after 30 s; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
