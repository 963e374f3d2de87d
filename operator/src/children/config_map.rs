//! The hub's ConfigMap: rtpmidid's INI file, and the hash of it that the pod template carries
//! so that a configuration change replaces the pod (rtpmidid reads its file only at start-up).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use midihub_api::rtpmidid_config::{ConfigError, RtpmididConfig, render};
use sha2::{Digest, Sha256};

use super::Parent;

/// Key of the INI file in the ConfigMap, and its file name where it is mounted.
pub const CONFIG_FILE_KEY: &str = "rtpmidid.ini";
/// Where the ConfigMap is mounted in the rtpmidid container.
pub const CONFIG_MOUNT_DIR: &str = "/etc/rtpmidid";

/// The ConfigMap holding the hub's rtpmidid configuration `rtpmidid` under
/// [`CONFIG_FILE_KEY`].
pub(super) fn config_map(
    parent: &Parent,
    rtpmidid: &RtpmididConfig,
) -> Result<ConfigMap, ConfigError> {
    let ini = render(rtpmidid)?;
    Ok(ConfigMap {
        metadata: parent.metadata.clone(),
        data: Some(BTreeMap::from([(CONFIG_FILE_KEY.to_owned(), ini)])),
        ..ConfigMap::default()
    })
}

/// A stable hash (SHA-256, hex) of the ConfigMap's data. The same data always gives the same
/// hash, across operator restarts and versions, so an unchanged configuration never rolls the
/// pod.
pub fn config_hash(config_map: &ConfigMap) -> String {
    let mut hasher = Sha256::new();
    // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    let mut add = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    for (key, value) in config_map.data.iter().flatten() {
        add(b"data");
        add(key.as_bytes());
        add(value.as_bytes());
    }
    for (key, value) in config_map.binary_data.iter().flatten() {
        add(b"binaryData");
        add(key.as_bytes());
        add(&value.0);
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
