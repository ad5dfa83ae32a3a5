//! The chart against a real API server: `helm install --dry-run=server` sends every rendered object
//! through the API server's validation and admission without keeping it. Ignored by default (no API
//! server runs where CI does); run with `KUBECONFIG=… cargo test -p drlaas-chart -- --ignored`.

use drlaas_chart::{Helm, chart_dir};

#[test]
#[ignore = "needs a cluster: set KUBECONFIG"]
fn the_api_server_accepts_every_object_of_the_chart() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "set KUBECONFIG to the cluster to check against"
    );
    let helm = Helm::pinned();
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    // The release namespace only (the default), a watched namespace besides it (a Role in another
    // existing namespace), then every namespace (ClusterRoles).
    for extra in [
        &[][..],
        &["--set", "watchNamespaces={kube-public}"][..],
        &["--set", "clusterWide=true"][..],
    ] {
        let mut args = vec![
            "install",
            "drlaas-dry-run",
            chart,
            "--namespace",
            "default",
            "--dry-run=server",
        ];
        args.extend_from_slice(extra);
        let out = helm.run(&args);
        assert!(out.success, "helm {args:?}:\n{}{}", out.stdout, out.stderr);
    }
}
