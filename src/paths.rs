//! Where kompress keeps its files, following the platform's conventions (XDG on Linux).
//!
//! `KOMPRESS_HOME` puts every directory under one folder (tests, portable installs).

use std::path::PathBuf;

use directories::ProjectDirs;

/// The directories kompress uses.
#[derive(Clone, Debug)]
pub struct Dirs {
    /// `config.toml` lives here.
    pub config: PathBuf,
    /// The installed model directory lives here (`model/`).
    pub data: PathBuf,
    /// Stored originals (recoverable outputs).
    pub cache: PathBuf,
    /// Logs and other state that is not worth backing up.
    pub state: PathBuf,
}

impl Dirs {
    /// Resolve the directories for this user. `None` when no home directory is known.
    pub fn resolve() -> Option<Dirs> {
        if let Some(home) = std::env::var_os("KOMPRESS_HOME").filter(|h| !h.is_empty()) {
            let home = PathBuf::from(home);
            return Some(Dirs {
                config: home.join("config"),
                data: home.join("data"),
                cache: home.join("cache"),
                state: home.join("state"),
            });
        }
        let project = ProjectDirs::from("", "", "kompress")?;
        let state = project
            .state_dir()
            .unwrap_or_else(|| project.data_local_dir())
            .to_path_buf();
        Some(Dirs {
            config: project.config_dir().to_path_buf(),
            data: project.data_dir().to_path_buf(),
            cache: project.cache_dir().to_path_buf(),
            state,
        })
    }

    /// The user's configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.config.join("config.toml")
    }

    /// The log file hook mode writes its errors to.
    pub fn log_file(&self) -> PathBuf {
        self.state.join("kompress.log")
    }

    /// The installed default model directory.
    pub fn model_dir(&self) -> PathBuf {
        self.data.join("model")
    }
}
