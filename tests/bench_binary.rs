//! `lloyd-bench --quick` end to end: every row in the CSV, well-formed SVG plots.

use std::process::Command;

#[test]
fn quick_grid_writes_every_row_and_valid_svg() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lloyd-bench"))
        .args(["--quick", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let methods = 1 + lloyd::list_adapters().len();
    let csv = std::fs::read_to_string(dir.path().join("bench.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(header.contains(&"median_ms_per_iter") && header.contains(&"gpu_ms_per_iter"));
    let rows: Vec<&str> = lines.collect();
    // quick grid: N in {10, 50, 200}, M = 200 000, seeds {0, 1}; one K-means problem
    let one_d = rows.iter().filter(|r| r.contains(",lloyd1d,")).count();
    let kmeans = rows.iter().filter(|r| r.contains(",kmeans,")).count();
    assert_eq!(one_d, methods * 3 * 2, "{csv}");
    assert_eq!(kmeans, methods, "{csv}");
    assert_eq!(
        rows.iter().filter(|r| r.contains(",pq_train,")).count(),
        methods,
        "{csv}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.contains(",pq_encode,")).count(),
        methods,
        "{csv}"
    );
    for r in &rows {
        let fields: Vec<&str> = r.rsplitn(12, ',').collect();
        let median: f64 = fields[3].parse().unwrap();
        assert!(median > 0.0 && median.is_finite(), "{r}");
    }
    for n in [10, 50, 200] {
        for seed in [0, 1] {
            assert!(rows.iter().any(|r| r.starts_with("\"cpu\",lloyd1d,")
                && r.contains(&format!(",{n},200000,1,{seed},"))));
        }
    }
    for svg in ["time_vs_n.svg", "ratio_vs_n.svg"] {
        let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{svg}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(
            doc.descendants()
                .filter(|n| n.tag_name().name() == "polyline")
                .count()
                >= methods
        );
    }
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.contains("| cpu | lloyd1d | 10 | 200000 |"), "{md}");
}
