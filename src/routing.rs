//! Model names to targets: the `models:` table, the `provider/model` shorthand, and the choice of
//! one target by weight.
//!
//! Resolution is a hash lookup on the hot path; the shorthand builds its one-target route on
//! demand because its model names are open-ended.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use switchboard_providers::catalog;

use crate::config::{ModelConfig, RetryConfig, Strategy, TargetConfig, TimeoutsConfig};
use crate::upstream::instances::InstanceLease;
use crate::upstream::{Backend, Upstream};
use crate::usage::Price;

/// Output tokens reserved for a model the catalog does not know, when a request sets no limit.
const DEFAULT_MAX_OUTPUT: u32 = 4096;

/// Where one model is served.
pub struct Target {
    pub upstream: Arc<Upstream>,
    /// The provider's own name for the model.
    pub model: String,
    pub weight: u32,
    /// From `pricing:`, else the catalog; `None` when neither knows the model.
    pub price: Option<Price>,
    /// Output tokens reserved when a request sets no `max_tokens`.
    pub max_output: u32,
    /// `provider/model`, spelled once: every answer names its target.
    name: String,
}

impl Target {
    /// How long the provider still holds this model after answering 429, if it does.
    pub fn held(&self) -> Option<std::time::Duration> {
        self.upstream.holds.remaining(&self.model)
    }

    fn new(
        upstream: Arc<Upstream>,
        model: &str,
        weight: u32,
        config: Option<&TargetConfig>,
    ) -> Self {
        let known = catalog::lookup(model);
        let price = match (config.and_then(|c| c.pricing), &upstream.backend) {
            (Some(p), _) => Some(Price::per_million(p.input, p.output)),
            // The built-in mock costs nothing.
            (None, Backend::Mock(_)) => Some(Price::default()),
            (None, Backend::Http(_)) => {
                known.map(|k| Price::per_million(k.input_usd_per_mtok, k.output_usd_per_mtok))
            }
        };
        let max_output = config
            .and_then(|c| c.max_output_tokens)
            .map(|n| n.get())
            .or(known.map(|k| k.max_output_tokens).filter(|&n| n > 0))
            .unwrap_or(DEFAULT_MAX_OUTPUT);
        Target {
            name: format!("{}/{model}", upstream.name),
            upstream,
            model: model.to_owned(),
            weight,
            price,
            max_output,
        }
    }

    /// `provider/model`: what usage is charged to.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A public model name and its targets.
pub struct Route {
    pub name: String,
    /// The name metrics use: the configured name, or `provider/*` for the shorthand, whose model
    /// part is client input and must not mint new series.
    pub label: String,
    pub targets: Vec<Target>,
    pub strategy: Strategy,
    pub retry: RetryConfig,
    pub timeouts: TimeoutsConfig,
    /// Model names to try, in order, once this one's targets have all failed.
    pub fallbacks: Vec<String>,
    /// What the response cache knows the route by: its name and its targets, so a reload that
    /// changes the targets leaves the answers of the old ones behind.
    pub cache_identity: String,
    /// Smooth weighted round robin: each target's running score.
    scores: Mutex<Vec<i64>>,
}

impl Route {
    fn new(
        name: String,
        label: String,
        targets: Vec<Target>,
        config: Option<&ModelConfig>,
    ) -> Self {
        let scores = Mutex::new(vec![0; targets.len()]);
        let cache_identity = match config {
            Some(config) => {
                let mut identity = name.clone();
                for target in &config.targets {
                    identity.push_str(&format!("\n{}\n{}", target.provider, target.model));
                }
                identity
            }
            None => name.clone(),
        };
        Route {
            cache_identity,
            name,
            label,
            targets,
            strategy: config.map(|c| c.strategy).unwrap_or_default(),
            retry: config.map(|c| c.retry).unwrap_or_default(),
            timeouts: config.map(|c| c.timeouts).unwrap_or_default(),
            fallbacks: config.map(|c| c.fallbacks.clone()).unwrap_or_default(),
            scores,
        }
    }

    /// A target for the next try and a lease on one of its instances, by the route's strategy,
    /// among targets with an instance that would take it. Targets in `tried` are chosen again
    /// only when no other is available; targets in `benched` never are, nor targets their
    /// provider holds after a 429.
    pub fn choose(&self, tried: &[usize], benched: &[usize]) -> Option<(usize, InstanceLease)> {
        let available: Vec<usize> = (0..self.targets.len())
            .filter(|i| !benched.contains(i))
            .filter(|&i| self.targets[i].held().is_none())
            .filter(|&i| self.targets[i].upstream.instances.available())
            .collect();
        let fresh: Vec<usize> = available
            .iter()
            .copied()
            .filter(|i| !tried.contains(i))
            .collect();
        let mut candidates = if fresh.is_empty() { available } else { fresh };
        // A lease can still be refused (a half-open breaker's probe was taken meanwhile).
        while !candidates.is_empty() {
            let index = match self.strategy {
                Strategy::Weighted => self.weighted(&candidates),
                Strategy::LeastBusy => self.least_busy(&candidates),
                Strategy::LowestLatency => self.lowest_latency(&candidates),
            };
            if let Some(lease) = self.targets[index].upstream.instances.lease() {
                return Some((index, lease));
            }
            candidates.retain(|&i| i != index);
        }
        None
    }

    /// Smooth weighted round robin (nginx's): exact proportions, no bursts, no randomness.
    fn weighted(&self, candidates: &[usize]) -> usize {
        let mut scores = self.scores.lock().unwrap_or_else(|e| e.into_inner());
        let total: i64 = candidates
            .iter()
            .map(|&i| i64::from(self.targets[i].weight))
            .sum();
        let mut best = candidates[0];
        for &i in candidates {
            scores[i] += i64::from(self.targets[i].weight);
            if scores[i] > scores[best] {
                best = i;
            }
        }
        scores[best] -= total;
        best
    }

    fn least_busy(&self, candidates: &[usize]) -> usize {
        let busy = |i: usize| {
            self.targets[i]
                .upstream
                .instances
                .least_in_flight()
                .unwrap_or(u32::MAX)
        };
        let fewest = candidates.iter().map(|&i| busy(i)).min().unwrap_or(0);
        let idle: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| busy(i) == fewest)
            .collect();
        idle[rand::rng().random_range(0..idle.len())]
    }

    /// Power of two choices: two targets at random, the faster one wins.
    fn lowest_latency(&self, candidates: &[usize]) -> usize {
        let mut rng = rand::rng();
        let a = candidates[rng.random_range(0..candidates.len())];
        let b = candidates[rng.random_range(0..candidates.len())];
        let latency = |i: usize| {
            self.targets[i]
                .upstream
                .instances
                .best_latency()
                .unwrap_or(Duration::MAX)
        };
        if latency(b) < latency(a) { b } else { a }
    }
}

/// Every model the gateway serves.
pub struct Routes {
    models: HashMap<String, Arc<Route>>,
    /// Configured names in config order, for `/v1/models`.
    order: Vec<String>,
    upstreams: BTreeMap<String, Arc<Upstream>>,
}

impl Routes {
    /// Builds the table; validation has already checked that every provider exists.
    pub fn new(configs: &[ModelConfig], upstreams: BTreeMap<String, Arc<Upstream>>) -> Self {
        let mut models = HashMap::with_capacity(configs.len());
        let mut order = Vec::with_capacity(configs.len());
        for config in configs {
            let targets = config
                .targets
                .iter()
                .filter_map(|t| {
                    let upstream = upstreams.get(&t.provider)?.clone();
                    Some(Target::new(upstream, &t.model, t.weight, Some(t)))
                })
                .collect();
            let route = Route::new(
                config.name.clone(),
                config.name.clone(),
                targets,
                Some(config),
            );
            order.push(config.name.clone());
            models.insert(config.name.clone(), Arc::new(route));
        }
        Routes {
            models,
            order,
            upstreams,
        }
    }

    /// The route for a public name: a configured model, else `provider/model`.
    pub fn resolve(&self, name: &str) -> Option<Arc<Route>> {
        if let Some(route) = self.models.get(name) {
            return Some(route.clone());
        }
        let (provider, model) = name.split_once('/')?;
        let upstream = self.upstreams.get(provider)?;
        if model.is_empty() {
            return None;
        }
        let target = Target::new(upstream.clone(), model, 1, None);
        let label = format!("{provider}/*");
        Some(Arc::new(Route::new(
            name.to_owned(),
            label,
            vec![target],
            None,
        )))
    }

    /// Every upstream, by provider name.
    pub fn upstreams(&self) -> &BTreeMap<String, Arc<Upstream>> {
        &self.upstreams
    }

    /// The configured routes, in config order.
    pub fn configured(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.order.iter().filter_map(|name| self.models.get(name))
    }

    /// Configured model names, in config order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn routes(yaml: &str) -> Routes {
        let config = Config::parse(yaml, &|_| None).unwrap();
        let upstreams = crate::upstream::build_all(&config.providers).unwrap();
        Routes::new(&config.models, upstreams)
    }

    #[test]
    fn resolves_configured_and_shorthand_names() {
        let routes = routes(
            "providers: { demo: { kind: mock } }\nmodels:\n  - { name: fast, targets: [ { provider: demo, model: m1 } ] }\n",
        );
        assert_eq!(routes.resolve("fast").unwrap().targets[0].model, "m1");
        let shorthand = routes.resolve("demo/some-model").unwrap();
        assert_eq!(shorthand.targets[0].model, "some-model");
        assert_eq!(shorthand.label, "demo/*");
        assert_eq!(routes.resolve("fast").unwrap().label, "fast");
        assert!(routes.resolve("nope").is_none());
        assert!(routes.resolve("nope/m").is_none());
        assert!(routes.resolve("demo/").is_none());
    }

    #[test]
    fn weights_are_honoured() {
        let routes = routes(
            "providers: { a: { kind: mock }, b: { kind: mock } }\nmodels:\n  - { name: m, targets: [ { provider: a, model: x, weight: 3 }, { provider: b, model: y, weight: 1 } ] }\n",
        );
        let route = routes.resolve("m").unwrap();
        let picks: Vec<usize> = (0..8).map(|_| route.choose(&[], &[]).unwrap().0).collect();
        // Smooth weighted round robin: exactly 3 of every 4, interleaved rather than in a burst.
        assert_eq!(picks, [0, 0, 1, 0, 0, 0, 1, 0]);
        assert_eq!(
            route.choose(&[0], &[]).unwrap().0,
            1,
            "a retry prefers another target"
        );
    }
}
