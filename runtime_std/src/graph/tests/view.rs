//! The materialized view over a real store directory: keyed latest state, snapshots, the
//! rebuild from snapshot + log tail, and a durable operator refused without a store directory.

use super::*;
use crate::graph::factory::{self, NoCallables, ParamMap, ParamValue, PortSpec};
use crate::schema::RecordType;

fn reading() -> Arc<Schema> {
    let record = RecordType { name: "Reading".into(), fields: vec![("sensor".into(), SchemaType::Text), ("value".into(), SchemaType::Float)] };
    Arc::new(Schema::new("Reading", 1, SchemaType::Record(Arc::new(record))))
}

fn rec(sensor: &str, value: f64) -> Value {
    Value::Record(vec![Value::Text(sensor.into()), Value::Float(value)].into())
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("manyfold-view-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A graph with `src.readings -> view (materialized_view) -> view.changes`.
fn graph_with_view(dir: Option<&std::path::Path>, snapshot_every: i64) -> Result<(Graph, ProducerIdx, RouteIdx), GraphError> {
    let mut g = Graph::new_virtual();
    if let Some(dir) = dir {
        g.set_store_dir(dir.to_path_buf())?;
    }
    let schema = reading();
    let src = g.declare_route(route("src", "readings"), schema.clone(), RouteOptions::default())?;
    let out = g.declare_route(route("view", "changes"), schema.clone(), RouteOptions::default())?;
    let mut params = ParamMap::new();
    params.insert("key".into(), ParamValue::Text("sensor".into()));
    params.insert("snapshot_every".into(), ParamValue::Int(snapshot_every));
    let ins = [PortSpec { route: "src".into(), schema: &schema }];
    let outs = [PortSpec { route: "out".into(), schema: &schema }];
    let op = factory::build("materialized_view", "view", &params, &ins, &outs, &mut NoCallables, g.store_dir())?;
    g.add_node_described("view", "materialized_view", op, &[(src, EdgePolicy::default())], &[out], params)?;
    let p = g.producer("src")?;
    Ok((g, p, src))
}

/// The view keeps the latest record per key; a new graph on the same directory rebuilds it
/// from the last snapshot plus the log records after it, and says how many it replayed.
#[test]
fn a_view_is_rebuilt_from_its_snapshot_and_log_tail() {
    let dir = temp_dir();
    {
        let (mut g, p, src) = graph_with_view(Some(&dir), 4).unwrap();
        for (i, s) in ["a", "b", "a", "c", "b", "a"].iter().enumerate() {
            g.publish(p, src, rec(s, i as f64), &PublishOptions::default()).unwrap();
        }
        let view = g.view("view").unwrap();
        assert_eq!(view.get(&Value::Text("a".into())), Some(&rec("a", 5.0)));
        let info = view.info();
        assert_eq!((info.keys, info.updates, info.snapshots, info.snapshot_seq, info.last_seq), (3, 6, 1, 4, 6));
    }
    let (g, _, _) = graph_with_view(Some(&dir), 4).unwrap();
    let view = g.view("view").unwrap();
    let info = view.info();
    assert_eq!((info.keys, info.replayed, info.snapshot_seq, info.last_seq), (3, 2, 4, 6), "{info:?}");
    assert!(info.lost.is_empty());
    assert_eq!(view.rows(), vec![
        (Value::Text("a".into()), rec("a", 5.0)),
        (Value::Text("b".into()), rec("b", 4.0)),
        (Value::Text("c".into()), rec("c", 3.0)),
    ]);
    assert!(g.nodes()[0].counters.contains(&("replayed", 2)));
}

/// Without a store directory the node is refused with the contract's sentence.
#[test]
fn a_view_without_a_store_directory_is_refused_in_one_sentence() {
    let err = graph_with_view(None, 10).err().unwrap();
    assert_eq!(err.kind(), "store");
    assert_eq!(
        err.message(),
        "node view (materialized_view) keeps durable state: give the graph a store directory (Graph(store_dir=...), or manyfold-node --store DIR)"
    );
}

/// A store whose file disappeared is started empty, and the view's health says what was lost.
#[test]
fn a_view_whose_store_file_disappeared_reports_it_in_its_health() {
    let dir = temp_dir();
    {
        let (mut g, p, src) = graph_with_view(Some(&dir), 100).unwrap();
        g.publish(p, src, rec("a", 1.0), &PublishOptions::default()).unwrap();
    }
    std::fs::remove_file(dir.join("view.sqlite")).unwrap();
    let _ = std::fs::remove_file(dir.join("view.sqlite-wal"));
    let (g, _, _) = graph_with_view(Some(&dir), 100).unwrap();
    let view = g.view("view").unwrap();
    assert_eq!(view.info().keys, 0);
    let health = view.health().unwrap();
    assert_eq!(health.state, HealthState::Degraded);
    assert!(health.why[0].contains("is missing"), "{:?}", health.why);
}
