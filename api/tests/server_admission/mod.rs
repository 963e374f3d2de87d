//! `ServerAdmission`: the real thing. A MidiHub is judged by a real Kubernetes API server with
//! the CRD installed (the control-plane tier's, see `scripts/control-plane`), by a server-side
//! dry run of a server-side apply with strict field validation — what
//! `kubectl apply --server-side --dry-run=server` does. Nothing is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use kube::api::{Api, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::{Client, Config};
use midihub_api::MidiHub;
use serde_json::{Value, json};

use crate::schema_admission::Rejection;

/// Namespace the dry runs are made in (created when missing; dry runs leave it empty).
const NAMESPACE: &str = "midihub-admission";

pub struct ServerAdmission {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl ServerAdmission {
    /// A judge talking to the API server of `kubeconfig`, which must have the CRD installed.
    pub fn new(kubeconfig: &Path) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the API client");
        let client = runtime.block_on(async {
            let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("a readable kubeconfig");
            let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("a usable kubeconfig");
            let client = Client::try_from(config).expect("an API client");
            let namespaces: Api<DynamicObject> = Api::all_with(
                client.clone(),
                &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
            );
            let namespace: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NAMESPACE },
            }))
            .expect("a Namespace");
            match namespaces.create(&PostParams::default(), &namespace).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => panic!("cannot create namespace {NAMESPACE}: {error}"),
            }
            client
        });
        Self { runtime, client }
    }

    /// Whether the API server admits `object`: its rejections (the causes it gives, each with
    /// the field and the message a user sees) when it does not.
    pub fn admit(&self, object: &Value) -> Result<(), Vec<Rejection>> {
        let mut object = object.clone();
        object["metadata"]["namespace"] = json!(NAMESPACE);
        let resource = ApiResource::erase::<MidiHub>(&());
        let url = format!(
            "/apis/{}/namespaces/{NAMESPACE}/{}?dryRun=All&fieldValidation=Strict",
            resource.api_version, resource.plural
        );
        let request = http::Request::post(url)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&object).expect("JSON"))
            .expect("a request");
        let result = self.runtime.block_on(self.client.request::<Value>(request));
        match result {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 422 || status.code == 400 => {
                let causes = status
                    .details
                    .as_ref()
                    .map(|details| details.causes.clone())
                    .unwrap_or_default();
                if causes.is_empty() {
                    Err(vec![Rejection {
                        field: String::new(),
                        message: status.message.clone(),
                    }])
                } else {
                    Err(causes
                        .into_iter()
                        .map(|cause| Rejection {
                            // Kubernetes names the object's root `<nil>`.
                            field: if cause.field == "<nil>" {
                                String::new()
                            } else {
                                cause.field
                            },
                            message: cause.message,
                        })
                        .collect())
                }
            }
            Err(error) => panic!("the API server did not judge the object: {error}"),
        }
    }
}
