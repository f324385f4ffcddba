//! A directory of tenant files (`tenants/`) and the state beside it, for
//! runs over many tenants (`--config DIR`). Each test file adds the runs
//! it needs in an `impl Fleet` of its own.

use serde_json::Value;
use std::path::PathBuf;

pub struct Fleet {
    pub dir: tempfile::TempDir,
}

impl Fleet {
    pub fn new() -> Fleet {
        let f = Fleet {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(f.tenants()).unwrap();
        f
    }

    pub fn tenants(&self) -> PathBuf {
        self.dir.path().join("tenants")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Tenant `name`: `tenants/<name>.json` (mode 600).
    pub fn add(&self, name: &str, config: &Value) {
        self.add_file(&format!("{name}.json"), config);
    }

    /// A file of the tenants' directory, whatever its name (mode 600).
    pub fn add_file(&self, file: &str, config: &Value) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.tenants().join(file);
        std::fs::write(&p, config.to_string()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
