//! app.json's deploy scripts, as a release records them.

use serde::{Deserialize, Serialize};

/// `scripts.dokku.predeploy` and `postdeploy`: shell command lines run in a
/// one-off container of the new release, before it starts and after it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Scripts {
    #[serde(default)]
    pub predeploy: Option<String>,
    #[serde(default)]
    pub postdeploy: Option<String>,
}
