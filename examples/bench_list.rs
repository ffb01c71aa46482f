//! The listing half of `scripts/bench sync_list`: lists a pool with
//! [`cognito_migrate::listing::Lister`] (sixteen `sub`-prefix chains under one UserList limiter)
//! and compares every user with a source file, as a full reconcile does; prints one JSON object.
//! Glue only; the listing is the library's. Built with `--features bench`.
//!
//! ```text
//! bench_list --endpoint http://127.0.0.1:PORT --pool-id ID --source users.csv [--rate 30] [--single]
//! ```
//!
//! The source is `username,email,name` with a header. Output: users and pages listed, calls,
//! throttled, the listing's own seconds, and the comparison (same, differing, only in the pool,
//! only in the source).

use std::collections::HashMap;
use std::time::Instant;

use cognito_migrate::listing::{ListOptions, Lister, Partitions, PoolUser};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wall = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    let endpoint = arg(&args, "--endpoint").ok_or("--endpoint URL")?;
    let pool = arg(&args, "--pool-id").ok_or("--pool-id ID")?;
    let source = arg(&args, "--source").ok_or("--source FILE")?;
    let rate: f64 = arg(&args, "--rate").map_or(Ok(30.0), |r| r.parse())?;
    let single = args.iter().any(|a| a == "--single");

    let mut want: HashMap<String, (String, String)> = HashMap::new();
    let mut reader = csv::Reader::from_path(&source)?;
    for row in reader.records() {
        let row = row?;
        want.insert(row[0].to_string(), (row[1].to_string(), row[2].to_string()));
    }

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_cognitoidentityprovider::config::Credentials::new(
            "test", "test", None, None, "bench",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let client = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let options = ListOptions {
        rate,
        partitions: if single {
            Partitions::Single
        } else {
            Partitions::BySubPrefix
        },
        ..ListOptions::default()
    };
    let lister = Lister::new(client, pool, options);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<PoolUser>(1024);
    let compare = async {
        let (mut same, mut differ, mut only_pool) = (0u64, 0u64, 0u64);
        let mut seen = 0u64;
        while let Some(u) = rx.recv().await {
            seen += 1;
            match want.remove(&u.username) {
                Some((email, name)) => {
                    if u.attribute("email") == Some(&email) && u.attribute("name") == Some(&name) {
                        same += 1;
                    } else {
                        differ += 1;
                    }
                }
                None => only_pool += 1,
            }
        }
        (seen, same, differ, only_pool, want.len() as u64)
    };
    let (stats, (seen, same, differ, only_pool, only_source)) =
        tokio::join!(lister.users(tx), compare);
    let stats = stats?;
    let secs = stats.elapsed.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "users": stats.users, "received": seen, "pages": stats.pages, "calls": stats.calls,
            "throttled": stats.throttled, "list_seconds": secs,
            "pages_per_second": stats.pages as f64 / secs,
            "same": same, "differ": differ, "only_in_pool": only_pool,
            "only_in_source": only_source, "wall_seconds": wall.elapsed().as_secs_f64(),
            "fell_back_to_single": stats.fell_back_to_single,
        })
    );
    Ok(())
}
