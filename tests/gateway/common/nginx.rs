//! A real nginx (Debian's `nginx-light`) in front of replicas: round-robin over their ports with
//! no stickiness, as a load balancer without session affinity would spread a client.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::free_port;
use super::temp_dir;

pub struct Nginx {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    /// Balances over `backends` (`127.0.0.1:port` each), streams unbuffered.
    pub fn start(backends: &[String]) -> Nginx {
        let port = free_port();
        let dir = temp_dir();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let servers: String = backends
            .iter()
            .map(|b| format!("        server {b};\n"))
            .collect();
        let config = format!(
            "daemon off;\nworker_processes 1;\npid {pid};\nerror_log {dir}/logs/error.log;\nevents {{}}\nhttp {{\n    access_log off;\n    client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n    upstream replicas {{\n{servers}    }}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_pass http://replicas;\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            proxy_buffering off;\n            proxy_read_timeout 600s;\n        }}\n    }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            dir = dir.display(),
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(nginx())
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (.ci/run installs Debian's nginx-light)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { port, child, dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// `nginx` on the PATH, or where Debian puts it (`/usr/sbin` is not on every user's PATH).
fn nginx() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

impl Drop for Nginx {
    /// Asks the master to stop first (SIGTERM): killed outright, it would leave its worker
    /// running, orphaned, after the test.
    fn drop(&mut self) {
        let asked = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while asked && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
