use super::*;

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

    let metadata = child_metadata(&hub).unwrap();

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
        child_metadata(&hub),
        Err(BuildError::MissingUid { name }) if name == "berlin"
    ));

    let mut hub = examples::hub();
    hub.metadata.namespace = None;
    assert!(matches!(
        child_metadata(&hub),
        Err(BuildError::MissingNamespace { .. })
    ));

    let mut hub = examples::hub();
    hub.metadata.name = None;
    assert!(matches!(child_metadata(&hub), Err(BuildError::MissingName)));
}

#[test]
fn a_hub_name_longer_than_a_label_value_is_refused() {
    let mut hub = examples::hub();
    hub.metadata.name = Some("h".repeat(64));
    let error = child_metadata(&hub).unwrap_err();
    assert!(matches!(error, BuildError::NameTooLong { length: 64, .. }));
    assert!(error.to_string().contains("shorter name"), "{error}");

    hub.metadata.name = Some("h".repeat(63));
    assert!(child_metadata(&hub).is_ok());
}
