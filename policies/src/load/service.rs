//! Reading `[[service]]` tables.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::de::DeValue;

use super::reader::{describe, Reader, TableReader};
use super::{found, HOUR, MAX_SERVICES, MS, SEC};
use crate::model::{
    Balance, Failover, Health, Hold, InstanceSpec, Metric, Retry, RetryOn, Route, ScaleDown, ScaleUp, ServicePolicy,
    StartStrategy,
};

pub(super) fn read_services(r: &mut Reader<'_>, top: &mut TableReader<'_, '_>) -> Vec<ServicePolicy> {
    let Some(v) = top.get(r, "service") else {
        r.error(
            0..0,
            "service",
            "the policy defines no service".into(),
            Some("add at least one `[[service]]` table with a name and an image (see policies/examples/)".into()),
        );
        return Vec::new();
    };
    let items = match v.get_ref() {
        DeValue::Array(a) => a,
        DeValue::Table(_) => {
            r.error(
                v.span(),
                "service",
                "expected an array of tables `[[service]]`, found a single table `[service]`".into(),
                Some("write `[[service]]` with double brackets: a policy can hold several services".into()),
            );
            return Vec::new();
        }
        other => {
            r.error(
                v.span(),
                "service",
                format!("expected an array of tables `[[service]]`, found {}", found(other)),
                Some("each service is a `[[service]]` table".into()),
            );
            return Vec::new();
        }
    };
    if items.len() > MAX_SERVICES {
        r.error(
            v.span(),
            "service",
            format!("expected at most {MAX_SERVICES} services, found {}", items.len()),
            Some("split the services over several twinkle appliances".into()),
        );
        return Vec::new();
    }
    let mut services = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("service[{i}]");
        match item.get_ref() {
            DeValue::Table(t) => {
                r.remember(&path, item.span());
                let mut tr = TableReader::new(t, path, item.span());
                services.push(read_service(r, &mut tr));
                tr.finish(r);
            }
            other => r.error(
                item.span(),
                &path,
                format!("expected a service table, found {}", describe(other)),
                Some("each element of `service` is a table with at least `name` and `image`".into()),
            ),
        }
    }
    services
}

fn required_string(
    r: &mut Reader<'_>,
    t: &mut TableReader<'_, '_>,
    key: &'static str,
    what: &str,
    example: &str,
) -> String {
    match t.string(r, key, what) {
        Some(s) => s,
        None => {
            if !r.is_set(&t.key_path(key)) {
                r.error(
                    t.span.clone(),
                    &t.key_path(key),
                    format!("missing required key `{key}`"),
                    Some(format!("add `{key} = {example}` to this service")),
                );
            }
            String::new()
        }
    }
}

fn read_service(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>) -> ServicePolicy {
    let name = required_string(r, t, "name", "a service name", "\"rubis\"");
    let route = read_route(r, t);
    let image = required_string(r, t, "image", "an image name or address", "\"images/rubis\"");
    let start = t.choice(r, "start", &StartStrategy::ALL).unwrap_or(StartStrategy::Twinkle);
    let min_instances = t
        .integer(r, "min_instances", 0, 1024, "0 allows scaling to zero (requests are held while one starts)")
        .unwrap_or(1);
    let max_instances =
        t.integer(r, "max_instances", 1, 1024, "the most VMs this service may run at once").unwrap_or(8);
    let instance = read_instance(r, t);
    let connect = read_connect(r, t);
    let scale_up = read_scale_up(r, t);
    let scale_down = read_scale_down(r, t, &scale_up);
    let health = read_health(r, t);
    let hold = read_hold(r, t);
    let retry = read_retry(r, t);
    let failover = match t.table(r, "failover") {
        Some(mut ft) => {
            let replace = ft.boolean(r, "replace").unwrap_or(true);
            ft.finish(r);
            Failover { replace }
        }
        None => Failover::default(),
    };
    let balance = match t.table(r, "balance") {
        Some(mut bt) => {
            let slow_start = bt.duration(r, "slow_start", Duration::ZERO, 10 * 60 * SEC);
            bt.finish(r);
            Balance { slow_start: slow_start.unwrap_or_default() }
        }
        None => Balance::default(),
    };
    ServicePolicy {
        name,
        route,
        image,
        start,
        min_instances,
        max_instances,
        instance,
        connect,
        scale_up,
        scale_down,
        health,
        hold,
        retry,
        failover,
        balance,
    }
}

fn read_route(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>) -> Route {
    let d = Route::default();
    let Some(mut rt) = t.table(r, "route") else {
        return d;
    };
    let host = rt.string(r, "host", "a host name, \"*\" or \"*.example.com\"");
    let path_prefix = rt.string(r, "path_prefix", "a path prefix such as \"/api\"");
    rt.finish(r);
    Route {
        host: host.map(|h| h.to_ascii_lowercase()).unwrap_or(d.host),
        path_prefix: path_prefix.unwrap_or(d.path_prefix),
    }
}

fn read_instance(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>) -> InstanceSpec {
    let d = InstanceSpec::default();
    let Some(mut it) = t.table(r, "instance") else {
        return d;
    };
    let out = InstanceSpec {
        mem_mib: it
            .integer(r, "mem_mib", 16, 65_536, "guest memory in MiB, a multiple of 2, e.g. 256")
            .unwrap_or(d.mem_mib),
        vcpus: it.integer(r, "vcpus", 1, 64, "virtual CPUs per instance").unwrap_or(d.vcpus),
        cpu_quota_pct: it
            .integer(r, "cpu_quota_pct", 1, 6400, "percent of one core: 100 is one full core, 20 a fifth")
            .unwrap_or(d.cpu_quota_pct),
        start_timeout: it.duration(r, "start_timeout", 100 * MS, 10 * 60 * SEC).unwrap_or(d.start_timeout),
    };
    it.finish(r);
    out
}

fn read_connect(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(mut ct) = t.table(r, "connect") else {
        return out;
    };
    let entries: Vec<_> = ct.entries().collect();
    for (key, value) in entries {
        let name: &str = key.get_ref();
        let path = ct.key_path(name);
        r.remember(&path, value.span());
        match value.get_ref() {
            DeValue::String(addr) => {
                out.insert(name.to_string(), addr.to_string());
            }
            other => r.error(
                value.span(),
                &path,
                format!("expected an endpoint \"HOST:PORT\", found {}", describe(other)),
                Some(format!("write {name} = \"127.0.0.1:6379\"")),
            ),
        }
    }
    // Every key of `connect` is an endpoint name the user chose: none is unknown.
    ct.allow_any();
    ct.finish(r);
    out
}

fn read_threshold(
    r: &mut Reader<'_>,
    t: &mut TableReader<'_, '_>,
    metric: Metric,
    latency_key: &'static str,
    plain_key: &'static str,
    default_ms: Option<f64>,
) -> Option<f64> {
    let (key, other) = if metric.is_latency() { (latency_key, plain_key) } else { (plain_key, latency_key) };
    t.allow(other);
    if let Some(v) = t.get(r, other) {
        let hint = if metric.is_latency() {
            format!("with metric \"{metric}\" write `{latency_key}` (milliseconds); `{plain_key}` is for inflight_per_instance and rps_per_instance")
        } else {
            format!(
                "with metric \"{metric}\" write `{plain_key}` ({}); `{latency_key}` is for response-time metrics",
                metric.unit()
            )
        };
        r.error(v.span(), &t.key_path(other), format!("`{other}` does not apply to metric \"{metric}\""), Some(hint));
    }
    let value = if metric.is_latency() {
        t.positive_number(r, key, 3_600_000.0, "a response time in milliseconds", "the paper's threshold is 2000 (ms)")
    } else {
        t.positive_number(r, key, 1e9, &format!("a value in {}", metric.unit()), "a positive number")
    };
    match value {
        Some(v) => Some(v),
        None if r.is_set(&t.key_path(key)) => None,
        None => match default_ms {
            Some(d) if metric.is_latency() => Some(d),
            _ => {
                r.error(
                    t.span.clone(),
                    &t.key_path(key),
                    format!("missing required key `{key}` for metric \"{metric}\""),
                    Some(format!("add `{key} = ...` in {}", metric.unit())),
                );
                None
            }
        },
    }
}

fn read_scale_up(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>) -> ScaleUp {
    let d = ScaleUp::default();
    let Some(mut st) = t.table(r, "scale_up") else {
        return d;
    };
    let metric = st.choice(r, "metric", &Metric::ALL).unwrap_or(d.metric);
    let threshold = read_threshold(r, &mut st, metric, "threshold_ms", "threshold", Some(d.threshold));
    let out = ScaleUp {
        metric,
        threshold: threshold.unwrap_or(d.threshold),
        window: st.duration(r, "window", SEC, HOUR).unwrap_or(d.window),
        sustain: st.duration(r, "sustain", Duration::ZERO, HOUR).unwrap_or(d.sustain),
        step: st.step(r, "step", 1024).unwrap_or(d.step),
        max_step: st.integer(r, "max_step", 1, 1024, "the most instances one scale-up may add").unwrap_or(d.max_step),
        cooldown: st.duration(r, "cooldown", Duration::ZERO, HOUR).unwrap_or(d.cooldown),
        give_up_after: st
            .integer(r, "give_up_after", 0, 100, "0 disables the \"scaling did not help\" guard")
            .unwrap_or(d.give_up_after),
        min_improvement_pct: st
            .integer(r, "min_improvement_pct", 1, 100, "the percentage by which latency must fall or throughput rise")
            .unwrap_or(d.min_improvement_pct),
    };
    st.finish(r);
    out
}

fn read_scale_down(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>, up: &ScaleUp) -> ScaleDown {
    let d = ScaleDown { metric: up.metric, below: up.threshold / 4.0, ..ScaleDown::default() };
    let Some(mut st) = t.table(r, "scale_down") else {
        return d;
    };
    st.allow("metric");
    if let Some(v) = st.get(r, "metric") {
        r.error(
            v.span(),
            &st.key_path("metric"),
            "scale_down has no metric of its own".into(),
            Some(
                "scale-down uses `scale_up.metric` over `scale_down.window`; set the metric in [service.scale_up]"
                    .into(),
            ),
        );
    }
    let below = read_threshold(r, &mut st, up.metric, "below_ms", "below", Some(d.below));
    // Latency metrics default to a quarter of the scale-up threshold; for the
    // per-instance metrics read_threshold has reported the missing key.
    let below = below.unwrap_or(d.below);
    let out = ScaleDown {
        metric: up.metric,
        below,
        window: st.duration(r, "window", SEC, HOUR).unwrap_or(d.window),
        stabilization: st.duration(r, "stabilization", Duration::ZERO, 4 * HOUR).unwrap_or(d.stabilization),
        step: st.step(r, "step", 1024).unwrap_or(d.step),
        cooldown: st.duration(r, "cooldown", Duration::ZERO, HOUR).unwrap_or(d.cooldown),
    };
    st.finish(r);
    out
}

fn read_health(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>) -> Health {
    let d = Health::default();
    let Some(mut ht) = t.table(r, "health") else {
        return d;
    };
    let out = Health {
        path: ht.string(r, "path", "a request path such as \"/health\"").unwrap_or(d.path),
        interval: ht.duration(r, "interval", 100 * MS, HOUR).unwrap_or(d.interval),
        timeout: ht.duration(r, "timeout", 10 * MS, 60 * SEC).unwrap_or(d.timeout),
        unhealthy_after: ht
            .integer(r, "unhealthy_after", 1, 100, "consecutive failed checks")
            .unwrap_or(d.unhealthy_after),
        healthy_after: ht.integer(r, "healthy_after", 1, 100, "consecutive good checks").unwrap_or(d.healthy_after),
        eject_after: ht.integer(r, "eject_after", 1, 1000, "consecutive failed requests").unwrap_or(d.eject_after),
        eject_for: ht.duration(r, "eject_for", SEC, HOUR).unwrap_or(d.eject_for),
        eject_max: ht.duration(r, "eject_max", SEC, 24 * HOUR).unwrap_or(d.eject_max),
        max_ejected_pct: ht
            .integer(r, "max_ejected_pct", 0, 100, "percent of the service's instances")
            .unwrap_or(d.max_ejected_pct),
    };
    ht.finish(r);
    out
}

fn read_hold(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>) -> Hold {
    let d = Hold::default();
    let Some(mut ht) = t.table(r, "hold") else {
        return d;
    };
    let out = Hold {
        max_wait: ht.duration(r, "max_wait", Duration::ZERO, 10 * 60 * SEC).unwrap_or(d.max_wait),
        max_queue: ht
            .integer(r, "max_queue", 0, 1_000_000, "0 disables holding: 503 at once when no instance is ready")
            .unwrap_or(d.max_queue),
    };
    ht.finish(r);
    out
}

const RETRY_NAMES: [&str; 5] = ["connect-failure", "reset", "timeout", "5xx", "500..599"];

fn read_retry(r: &mut Reader<'_>, t: &mut TableReader<'_, '_>) -> Retry {
    let d = Retry::default();
    let Some(mut rt) = t.table(r, "retry") else {
        return d;
    };
    let attempts = rt.integer(r, "attempts", 0, 10, "retries after the first try; 0 disables retries");
    let budget_pct = rt.integer(r, "budget_pct", 0, 100, "retries may add at most this percentage of requests");
    let path = rt.key_path("on");
    let on = match rt.get(r, "on") {
        None => d.on.clone(),
        Some(v) => match v.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let ipath = format!("{path}[{i}]");
                    match parse_retry_on(item.get_ref()) {
                        Ok(c) if out.contains(&c) => r.error(
                            item.span(),
                            &ipath,
                            format!("`{}` is listed twice", c.name()),
                            Some("remove the duplicate".into()),
                        ),
                        Ok(c) => out.push(c),
                        Err(why) => {
                            let hint = match item.get_ref() {
                                DeValue::String(s) => match crate::suggest::did_you_mean(s, &RETRY_NAMES) {
                                    Some(best) => format!("did you mean \"{best}\"?"),
                                    None => format!("conditions: {}", RETRY_NAMES.join(", ")),
                                },
                                _ => format!("conditions are strings: {}", RETRY_NAMES.join(", ")),
                            };
                            r.error(item.span(), &ipath, why, Some(hint));
                        }
                    }
                }
                out
            }
            other => {
                r.error(
                    v.span(),
                    &path,
                    format!("expected an array of retry conditions, found {}", describe(other)),
                    Some("write on = [\"connect-failure\", \"reset\", \"502\", \"503\"]".into()),
                );
                d.on.clone()
            }
        },
    };
    rt.finish(r);
    Retry { attempts: attempts.unwrap_or(d.attempts), budget_pct: budget_pct.unwrap_or(d.budget_pct), on }
}

fn parse_retry_on(v: &DeValue<'_>) -> Result<RetryOn, String> {
    let expected = "expected a retry condition (connect-failure, reset, timeout, 5xx or a status 500..599)";
    let code = match v {
        DeValue::String(s) => match s.as_ref() {
            "connect-failure" => return Ok(RetryOn::ConnectFailure),
            "reset" => return Ok(RetryOn::Reset),
            "timeout" => return Ok(RetryOn::Timeout),
            "5xx" => return Ok(RetryOn::Any5xx),
            other => match other.parse::<i64>() {
                Ok(c) => c,
                Err(_) => return Err(format!("{expected}, found \"{other}\"")),
            },
        },
        DeValue::Integer(_) => super::reader::int_value(v).unwrap_or(-1),
        other => return Err(format!("{expected}, found {}", describe(other))),
    };
    if (500..=599).contains(&code) {
        Ok(RetryOn::Status(code as u16))
    } else {
        Err(format!("{expected}, found status {code}: only 5xx responses are retried"))
    }
}
