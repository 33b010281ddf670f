//! A real S3-compatible server on loopback for tests: moto's server
//! (`pip install 'moto[server]'`), one per test, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running S3 server with one bucket.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created for the test.
    pub bucket: String,
}

impl S3Server {
    /// Starts moto_server on a free port and creates a bucket.
    pub async fn start() -> anyhow::Result<Self> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("starting moto_server (pip install 'moto[server]'): {e}")
            })?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut server = Self {
            child,
            endpoint,
            bucket: format!("evs-{}", uuid::Uuid::new_v4().simple()),
        };
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // moto creates buckets on an unsigned PUT.
            match http
                .put(format!("{}/{}", server.endpoint, server.bucket))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => break,
                _ if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                other => {
                    let _ = server.child.kill();
                    anyhow::bail!("S3 server did not come up: {other:?}");
                }
            }
        }
        Ok(server)
    }

    /// Points `config` at this server.
    pub fn configure(&self, config: &mut evistream::config::Config) {
        let s = &mut config.storage;
        s.backend = evistream::config::StorageBackend::S3;
        s.s3_endpoint = self.endpoint.clone();
        s.s3_bucket = self.bucket.clone();
        s.s3_region = "us-east-1".into();
        s.s3_access_key_id = "testing".into();
        s.s3_secret_access_key = "testing".into();
        s.s3_root = "/evistream/".into();
    }

    /// Stops the server (to test what the API does without its blob store).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
