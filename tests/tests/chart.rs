//! The Helm chart ships the CRD Helm installs before its templates (`charts/midihub/crds/`):
//! it must be exactly the generated `crds/midihub.yaml`, or a chart install would create a
//! resource definition that differs from what the operator's types expect.

use std::path::{Path, PathBuf};

const COPY: &str = "cp crds/midihub.yaml charts/midihub/crds/midihub.yaml";

fn repository_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn read(relative: &str) -> Vec<u8> {
    let path = repository_file(relative);
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; the chart's CRD is a copy of the generated one: run `{COPY}`",
            path.display()
        )
    })
}

#[test]
fn the_charts_crd_is_the_generated_crd_byte_for_byte() {
    let generated = read("crds/midihub.yaml");
    let in_chart = read("charts/midihub/crds/midihub.yaml");
    if generated != in_chart {
        let generated_text = String::from_utf8_lossy(&generated);
        let chart_text = String::from_utf8_lossy(&in_chart);
        let first_difference = generated_text
            .lines()
            .zip(chart_text.lines())
            .enumerate()
            .find(|(_, (generated, chart))| generated != chart)
            .map(|(index, (generated, chart))| {
                format!(
                    "first difference at line {}:\n  crds/midihub.yaml:                {generated}\n  \
                     charts/midihub/crds/midihub.yaml: {chart}",
                    index + 1
                )
            })
            .unwrap_or_else(|| {
                format!(
                    "the lines agree as far as both go; sizes differ ({} vs {} bytes)",
                    generated.len(),
                    in_chart.len()
                )
            });
        panic!(
            "charts/midihub/crds/midihub.yaml differs from the generated crds/midihub.yaml; \
             copy it with\n\n    {COPY}\n\n{first_difference}"
        );
    }
}
