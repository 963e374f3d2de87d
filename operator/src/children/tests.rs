use super::*;

fn children_of(hub: &MidiHub) -> Result<Children, ChildrenError> {
    children(hub, &examples::privileged_config(), true, None)
}

#[test]
fn children_are_named_after_the_hub() {
    assert_eq!(child_name(&examples::hub()), "midihub-berlin");
}

#[test]
fn labels_name_the_app_the_instance_the_manager_and_the_hub() {
    let labels = labels(&examples::hub());

    assert_eq!(
        labels,
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "midihub".to_owned()),
            ("app.kubernetes.io/instance".to_owned(), "berlin".to_owned()),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "midihub-operator".to_owned()
            ),
            ("midihub.io/hub".to_owned(), "berlin".to_owned()),
        ])
    );
}

#[test]
fn child_metadata_has_namespace_labels_and_a_controller_owner_reference() {
    let hub = examples::hub();

    let metadata = Parent::of(&hub).unwrap().metadata;

    assert_eq!(metadata.name.as_deref(), Some("midihub-berlin"));
    assert_eq!(metadata.namespace.as_deref(), Some("music"));
    assert_eq!(metadata.labels, Some(labels(&hub)));
    let owners = metadata.owner_references.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].api_version, "midihub.io/v1alpha1");
    assert_eq!(owners[0].kind, "MidiHub");
    assert_eq!(owners[0].name, "berlin");
    assert_eq!(owners[0].uid, examples::UID);
    assert_eq!(owners[0].controller, Some(true));
}

#[test]
fn a_hub_without_uid_namespace_or_name_cannot_have_children() {
    let mut hub = examples::hub();
    hub.metadata.uid = None;
    assert!(matches!(
        children_of(&hub),
        Err(ChildrenError::MissingUid { name }) if name == "berlin"
    ));

    let mut hub = examples::hub();
    hub.metadata.namespace = None;
    assert!(matches!(
        children_of(&hub),
        Err(ChildrenError::MissingNamespace { .. })
    ));

    let mut hub = examples::hub();
    hub.metadata.name = None;
    assert!(matches!(children_of(&hub), Err(ChildrenError::MissingName)));
}

#[test]
fn a_hub_name_longer_than_a_label_value_is_refused() {
    let mut hub = examples::hub();
    hub.metadata.name = Some("h".repeat(64));
    let error = children_of(&hub).unwrap_err();
    assert!(matches!(
        error,
        ChildrenError::NameTooLong { length: 64, .. }
    ));
    assert!(error.to_string().contains("shorter name"), "{error}");

    hub.metadata.name = Some("h".repeat(63));
    assert!(children_of(&hub).is_ok());
}

#[test]
fn every_child_carries_the_hubs_child_metadata() {
    let hub = examples::hub();

    let children = children_of(&hub).unwrap();

    let expected = Some(Parent::of(&hub).unwrap().metadata);
    let metadata = [
        &children.service_account.metadata,
        &children.role.metadata,
        &children.role_binding.metadata,
        &children.config_map.metadata,
        &children.deployment.metadata,
    ];
    for metadata in metadata {
        assert_eq!(Some(metadata.clone()), expected);
    }
}

#[test]
fn an_awake_hub_has_one_pod_and_a_sleeping_one_none() {
    let config = examples::privileged_config();
    for (awake, replicas) in [(true, 1), (false, 0)] {
        let children = children(&examples::hub(), &config, awake, None).unwrap();
        assert_eq!(children.deployment.spec.unwrap().replicas, Some(replicas));
    }
}

#[test]
fn the_pod_template_carries_the_hash_of_the_config_map() {
    let children = children_of(&examples::hub()).unwrap();

    let template = children.deployment.spec.unwrap().template.metadata.unwrap();
    assert_eq!(
        template.annotations.unwrap()[CONFIG_HASH_ANNOTATION],
        config_hash(&children.config_map)
    );
}
