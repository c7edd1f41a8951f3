//! Exit check `param_extract_allocs`: heap allocations (counting global allocator) per
//! decode + lookup + extraction of a 3-parameter route with 1,000 routes registered, for every
//! router kind; the figure is the worst kind. Prints `{"measured", "unit", "detail"}`.

use m04_http10::Method;
use m05_routing::decode::decode_path;
use m05_routing::lab::{self, path_for, route_set};
use m05_routing::{Lookup, MethodSet, Pattern, RouteTable, RouterKind, sys};

#[global_allocator]
static ALLOC: sys::CountingAlloc = sys::CountingAlloc;

const LOOKUPS: u64 = 100_000;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let routes: Vec<(Pattern, MethodSet)> = route_set(1000)
            .iter()
            .map(|p| Pattern::parse(p).map(|p| (p, MethodSet::from_slice(&[Method::Get]))))
            .collect::<Result<_, _>>()
            .map_err(std::io::Error::other)?;
        // 3-parameter routes are every fourth route from index 2; use a spread of them.
        let paths: Vec<(usize, String)> =
            (0..250).map(|k| (k * 4 + 2, path_for(k * 4 + 2))).collect();
        let mut worst = 0.0f64;
        let mut parts = Vec::new();
        for kind in RouterKind::ALL {
            let (table, _) =
                RouteTable::build(kind, routes.clone()).map_err(std::io::Error::other)?;
            let mut checksum = 0usize;
            let before = sys::thread_allocations();
            for i in 0..LOOKUPS {
                let (want, raw) = &paths[i as usize % paths.len()];
                let Ok(path) = decode_path(raw) else {
                    return Err(std::io::Error::other("decode failed"));
                };
                match table.lookup(Method::Get, &path) {
                    Lookup::Found { route, params } if route == *want && params.len() == 3 => {
                        let org = params.get("org").unwrap_or("");
                        let repo = params.get("repo").unwrap_or("");
                        let num = params.get("num").unwrap_or("");
                        checksum += org.len() + repo.len() + num.len();
                    }
                    other => {
                        return Err(std::io::Error::other(format!("{kind}: {raw} → {other:?}")));
                    }
                }
            }
            let allocs = sys::thread_allocations() - before;
            if !sys::is_installed() || checksum == 0 {
                return Err(std::io::Error::other("counting allocator not active"));
            }
            let per = allocs as f64 / LOOKUPS as f64;
            worst = worst.max(per);
            parts.push(format!("{kind}: {allocs} allocations in {LOOKUPS} lookups"));
        }
        lab::print_measured(
            worst,
            "allocations/request",
            &format!(
                "decode_path (borrowed when no escape) + RouteTable::lookup + reading all 3 params, {LOOKUPS} times per \
                 kind over 250 different 3-parameter paths, 1,000 routes registered; counted by the CountingAlloc \
                 global allocator on this thread. Params is an inline array of (name, &str) slices. {}. Machine: {}",
                parts.join("; "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
