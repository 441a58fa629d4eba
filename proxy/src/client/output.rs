//! Human output of the REST client: aligned tables and one line per event.
//! (`--json` bypasses all of this.)

use serde_json::Value;

/// Prints `v` as pretty JSON, or through `human`.
pub(super) fn print(json: bool, v: &Value, human: fn(&Value)) {
    if json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        human(v);
    }
}

/// `serin status`.
pub(super) fn status(v: &Value) {
    let maintenance = if v["maintenance"].as_bool() == Some(true) {
        "ON"
    } else {
        "off"
    };
    println!(
        "revision {}   maintenance {maintenance}",
        text(&v["revision"])
    );
    let empty = Vec::new();
    let routes = v["routes"].as_array().unwrap_or(&empty);
    table(&routes_rows(routes));
    cluster(v);
}

/// `serin status` in a fleet: who leads, who is there, and drift.
fn cluster(v: &Value) {
    let c = &v["cluster"];
    if c.is_null() {
        return;
    }
    let mut head = format!(
        "\nfleet: this replica {}   leader {}   etcd {}",
        text(&c["node"]),
        c["leader"].as_str().unwrap_or("none"),
        if c["connected"] == true {
            "reachable"
        } else {
            "UNREACHABLE"
        }
    );
    if c["partitioned"] == true {
        head.push_str("   PARTITIONED (deciding alone)");
    }
    if v["config_drift"] == true {
        head.push_str("   config drift: this replica's file differs from the fleet's");
    }
    println!("{head}");
    if let Some(why) = c["conflict"].as_str() {
        println!("STANDING ASIDE: {why}");
    }
    if let Some(why) = c["behind"].as_str() {
        println!("BEHIND THE FLEET: {why}");
    }
    let mut rows = vec![row(&["NODE", "REVISION", "STATE VERSION", "LAST SEEN"])];
    for n in c["nodes"].as_array().into_iter().flatten() {
        let name = text(&n["name"]);
        let lead = if n["name"] == c["leader"] {
            " (leader)"
        } else {
            ""
        };
        rows.push(row(&[
            &format!("{name}{lead}"),
            &text(&n["revision"]),
            &text(&n["version"]),
            &text(&n["last_seen"]),
        ]));
    }
    table(&rows);
}

/// A route change, a reload or a maintenance answer.
pub(super) fn change(v: &Value) {
    if v["route"].is_object() {
        table(&routes_rows(std::slice::from_ref(&v["route"])));
    } else if let Some(result) = v["result"].as_str() {
        println!("{result}: revision {} in force", text(&v["revision"]));
    } else if let Some(on) = v["enabled"].as_bool() {
        match on {
            true => println!("maintenance ON: {}", text(&v["message"])),
            false => println!("maintenance off"),
        }
    }
    if v["event"].is_object() {
        event(&v["event"]);
    }
}

/// `serin incidents`: one line per incident.
pub(super) fn incidents(v: &Value) {
    let list: Vec<&Value> = match v["incidents"].as_array() {
        Some(a) => a.iter().collect(),
        None => vec![v],
    };
    let secs = |x: &Value| {
        x.as_f64()
            .map_or_else(|| "—".to_owned(), |s| format!("{s:.2}s"))
    };
    let mut rows = vec![row(&[
        "ID",
        "ROUTE",
        "OPENED",
        "CLOSED",
        "BY",
        "DETECT",
        "DECIDE",
        "ROLLBACK",
        "CLIENT ERRORS",
        "TRIGGER",
    ])];
    for i in list {
        rows.push(row(&[
            &text(&i["id"]),
            &text(&i["route"]),
            &text(&i["opened"]),
            &text(&i["closed"]),
            &text(&i["actor"]),
            &secs(&i["detection_s"]),
            &secs(&i["decision_s"]),
            &secs(&i["rollback_s"]),
            &format!(
                "{} of {}",
                text(&i["client_errors"]),
                text(&i["client_requests"])
            ),
            &text(&i["trigger"]),
        ]));
    }
    table(&rows);
}

/// `serin drill`: the timings and the client-visible errors.
pub(super) fn drill(v: &Value) {
    let secs = |k: &str| {
        v[k].as_f64()
            .map_or_else(|| "—".to_owned(), |s| format!("{s:.2} s"))
    };
    println!(
        "drill {} ({}): {} on {}/{}",
        text(&v["id"]),
        text(&v["state"]),
        text(&v["spec"]["scenario"]),
        text(&v["spec"]["route"]),
        text(&v["spec"]["version"])
    );
    table(&[
        row(&["detection (fault → breach)", &secs("detection_s")]),
        row(&["decision (breach → action)", &secs("decision_s")]),
        row(&["rollback (action → canary at 0)", &secs("rollback_s")]),
        row(&["fault → canary at 0", &secs("total_s")]),
        row(&[
            "client errors",
            &format!(
                "{} of {}",
                text(&v["client_errors"]),
                text(&v["client_requests"])
            ),
        ]),
    ]);
}

/// `serin revisions`: `*` marks the revision in force.
pub(super) fn revisions(v: &Value) {
    let current = v["current"].as_str().unwrap_or("");
    let mut rows = vec![row(&["", "ID", "TIME", "SHA256", "ACTOR"])];
    for r in v["revisions"].as_array().into_iter().flatten() {
        let id = text(&r["id"]);
        let mark = if id == current { "*" } else { "" };
        let sha = text(&r["sha256"]);
        rows.push(row(&[
            mark,
            &id,
            &text(&r["time"]),
            sha.get(..12).unwrap_or(&sha),
            &text(&r["actor"]),
        ]));
    }
    table(&rows);
}

/// One event: `#SEQ TIME ACTOR KIND ROUTE [VERSION] [BEFORE → AFTER] REASON`.
pub(super) fn event(e: &Value) {
    let mut line = format!(
        "#{} {} {:<6} {}",
        e["seq"],
        text(&e["time"]),
        text(&e["actor"]),
        text(&e["kind"])
    );
    for key in ["route", "version"] {
        if let Some(s) = e[key].as_str() {
            line.push(' ');
            line.push_str(s);
        }
    }
    if !e["before"].is_null() || !e["after"].is_null() {
        line.push_str(&format!(" {} → {}", e["before"], e["after"]));
    }
    println!("{line}: {}", text(&e["reason"]));
}

fn routes_rows(routes: &[Value]) -> Vec<Vec<String>> {
    let mut rows = vec![row(&[
        "ROUTE", "STATE", "VERSION", "WEIGHT", "SHARE", "BREAKER", "HEALTH", "URL",
    ])];
    for r in routes {
        for (i, v) in r["versions"].as_array().into_iter().flatten().enumerate() {
            let (name, state) = if i == 0 {
                (text(&r["name"]), text(&r["state"]))
            } else {
                (String::new(), String::new())
            };
            let share = v["share"]
                .as_f64()
                .map_or_else(String::new, |s| format!("{:.1}%", s * 100.0));
            rows.push(row(&[
                &name,
                &state,
                &text(&v["name"]),
                &v["weight"].to_string(),
                &share,
                &text(&v["breaker"]),
                &text(&v["health"]),
                &text(&v["url"]),
            ]));
        }
    }
    rows
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// Prints rows with columns padded to their widest cell.
fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// A string value as is, anything else as JSON.
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}
