//! Parsing of Kubernetes REST paths into what they address: a collection, an object or an
//! object's subresource, without discovery or schemas.

use super::error::FakeApiServerError;

/// A resource type as far as the store cares: objects of the same group and plural are the
/// same objects whichever API version they are read through.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ResourceType {
    pub(crate) group: String,
    pub(crate) plural: String,
}

/// The store key of one object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjectKey {
    pub(crate) resource: ResourceType,
    /// `None` for cluster-scoped objects such as Nodes and Namespaces.
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
}

/// What a request path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    pub(crate) resource: ResourceType,
    /// `group/version`, or `version` for the core group, as the path spelled it.
    pub(crate) api_version: String,
    /// `None` means cluster-scoped for a single object, and all namespaces for a collection.
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
}

impl ResourcePath {
    /// Parses `/api/v1/...` and `/apis/{group}/{version}/...` paths; the leading slash is
    /// optional so tests may write paths either way.
    pub(crate) fn parse(path: &str) -> Result<Self, FakeApiServerError> {
        let not_served = || FakeApiServerError::PathNotServed {
            path: path.to_owned(),
        };
        let segments: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return Err(not_served());
        }
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return Err(not_served()),
        };
        let (namespace, plural, name, subresource) = match rest {
            // Namespaces are themselves a cluster-scoped resource; `status` and `finalize`
            // are their subresources, not namespaced collections.
            ["namespaces", namespace, sub @ ("status" | "finalize")] => {
                (None, "namespaces", Some(*namespace), Some(*sub))
            }
            ["namespaces", namespace, plural, name, sub] => {
                (Some(*namespace), *plural, Some(*name), Some(*sub))
            }
            ["namespaces", namespace, plural, name] => {
                (Some(*namespace), *plural, Some(*name), None)
            }
            ["namespaces", namespace, plural] => (Some(*namespace), *plural, None, None),
            [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
            [plural, name] => (None, *plural, Some(*name), None),
            [plural] => (None, *plural, None, None),
            _ => return Err(not_served()),
        };
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Ok(Self {
            resource: ResourceType {
                group: group.to_owned(),
                plural: plural.to_owned(),
            },
            api_version,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: subresource.map(str::to_owned),
        })
    }

    /// The key of the addressed object, when the path names one.
    pub(crate) fn object_key(&self) -> Option<ObjectKey> {
        self.name.as_ref().map(|name| ObjectKey {
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            name: name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_object_with_subresource() {
        let path = ResourcePath::parse(
            "/apis/midihub.example/v1alpha1/namespaces/music/midihubs/jam/status",
        )
        .unwrap();
        assert_eq!(path.resource.group, "midihub.example");
        assert_eq!(path.resource.plural, "midihubs");
        assert_eq!(path.api_version, "midihub.example/v1alpha1");
        assert_eq!(path.namespace.as_deref(), Some("music"));
        assert_eq!(path.name.as_deref(), Some("jam"));
        assert_eq!(path.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn cluster_scoped_and_all_namespace_paths() {
        let node = ResourcePath::parse("api/v1/nodes/worker-1").unwrap();
        assert_eq!(
            (node.namespace, node.name.as_deref()),
            (None, Some("worker-1"))
        );
        let all_pods = ResourcePath::parse("/api/v1/pods").unwrap();
        assert_eq!((all_pods.namespace, all_pods.name), (None, None));
        let namespace = ResourcePath::parse("/api/v1/namespaces/music").unwrap();
        assert_eq!(namespace.resource.plural, "namespaces");
        assert_eq!(namespace.name.as_deref(), Some("music"));
        let namespace_status = ResourcePath::parse("/api/v1/namespaces/music/status").unwrap();
        assert_eq!(namespace_status.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn paths_outside_the_resource_api_are_not_served() {
        for path in [
            "/",
            "/healthz",
            "/api/v1",
            "/apis/apps",
            "/api/v1/namespaces/a/b/c/d/e",
            "/api//v1/x",
        ] {
            assert!(
                ResourcePath::parse(path).is_err(),
                "{path} should not parse"
            );
        }
    }
}
