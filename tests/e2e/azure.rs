//! Storage on Azure Blob Storage's protocol: Azurite (npm, pinned in
//! tests/servers), Microsoft's emulator, on a loopback port. The example
//! warehouse runs on `az://` end to end (materialize, edit, early cutoff,
//! time travel); a refused account key is named as such, with nothing
//! committed.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Project, assert_nothing_committed, python};

const CONTAINER: &str = "cairn-test";
/// Azurite's one account, with its published well-known key.
const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite blob server on a free loopback port with the container
/// created, killed on drop.
struct Azurite {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Azurite {
    fn start() -> Azurite {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/servers/node_modules/.bin/azurite-blob");
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(port.to_string())
            .arg("--location")
            .arg(dir.path())
            .args(["--skipApiVersionCheck", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (tests/run.sh installs it: npm ci --prefix tests/servers)",
                    bin.display()
                )
            });
        let azurite = Azurite {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Azurite did not listen in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Creating a container takes a signed request: Azure's own client.
        python(
            "import sys; from azure.storage.blob import BlobServiceClient as C; \
             C.from_connection_string(sys.argv[1]).create_container(sys.argv[2])",
            [azurite.connection_string().as_str(), CONTAINER],
        );
        azurite
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={};",
            self.endpoint()
        )
    }

    /// Names and sizes of the blobs under `prefix`, from Azure's client.
    fn blobs(&self, prefix: &str) -> Vec<(String, u64)> {
        python(
            "import sys; from azure.storage.blob import BlobServiceClient as C; \
             c = C.from_connection_string(sys.argv[1]).get_container_client(sys.argv[2]); \
             [print(b.name, b.size) for b in c.list_blobs(name_starts_with=sys.argv[3])]",
            [self.connection_string().as_str(), CONTAINER, prefix],
        )
        .lines()
        .map(|line| {
            let (name, size) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), size.parse().unwrap())
        })
        .collect()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Points `p` at `az://CONTAINER/wh` on Azurite, with the account and its
/// key in the environment only.
fn on_azure(p: &mut Project, azurite: &Azurite, key: &str) {
    p.edit(
        "cairn.toml",
        "[storage]\nurl = \"file://./warehouse\"\n",
        &format!(
            "[storage]\nurl = \"az://{CONTAINER}/wh\"\nendpoint = \"{}\"\nallow_http = true\n",
            azurite.endpoint()
        ),
    );
    p.env = vec![
        ("AZURE_STORAGE_ACCOUNT_NAME".into(), ACCOUNT.into()),
        ("AZURE_STORAGE_ACCOUNT_KEY".into(), key.into()),
    ];
}

#[test]
fn azure_warehouse_materializes_rebuilds_what_changed_and_reads_back() {
    let azurite = Azurite::start();
    let mut p = Project::example();
    on_azure(&mut p, &azurite, ACCOUNT_KEY);

    crate::s3::warehouse_scenario(&p, &|prefix| azurite.blobs(prefix));
}

#[test]
fn azure_refused_account_key_is_named_and_commits_nothing() {
    let azurite = Azurite::start();
    let mut p = Project::example();
    // A well-formed key that is not the account's.
    on_azure(&mut p, &azurite, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=");
    let started = Instant::now();
    let run = p.run(&["materialize"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        run.stderr.contains("credentials were refused")
            && run.stderr.contains("AZURE_STORAGE_ACCOUNT_KEY")
            && run.stderr.contains(&format!("az://{CONTAINER}/wh")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_nothing_committed(&p);
    assert!(azurite.blobs("wh/").is_empty());
}
