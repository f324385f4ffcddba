//! Test certificates made with openssl: a CA, a server certificate for
//! `localhost` and 127.0.0.1, a client certificate, and for the failure
//! cases a second, untrusted CA and a server certificate for another name.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA: `<name>.pem`, `<name>.key`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "3",
            "-subj",
            &format!("/CN=siem-agent test {name}"),
        ],
    );
}

/// A leaf certificate `<name>.pem`/`<name>.key` signed by `issuer`.
fn leaf(dir: &Path, name: &str, issuer: &str, cn: &str, ext: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "3",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// `expired.pem`/`expired.key`: valid for localhost, signed by `ca`, but
/// only in January 2020 (`openssl ca` can backdate; `x509 -req` cannot).
fn expired(dir: &Path, ext: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "expired.key",
            "-out",
            "expired.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(dir.join("expired.ext"), ext).unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-extfile",
            "expired.ext",
            "-notext",
        ],
    );
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ca(d, "ca");
        ca(d, "other-ca");
        let server = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n";
        leaf(
            d,
            "server",
            "ca",
            "localhost",
            &format!("{server}subjectAltName=DNS:localhost,IP:127.0.0.1\n"),
        );
        leaf(
            d,
            "wrong-name",
            "ca",
            "other.example",
            &format!("{server}subjectAltName=DNS:other.example\n"),
        );
        expired(
            d,
            &format!("{server}subjectAltName=DNS:localhost,IP:127.0.0.1\n"),
        );
        leaf(
            d,
            "client",
            "ca",
            "siem-agent",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        );
        Certs { dir }
    }

    /// `ca.pem`, `server.key`, `client.pem`, `other-ca.pem`, `wrong-name.pem` ...
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
