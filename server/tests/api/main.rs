//! Route tests: each starts the real server on port 0 (embedded backend on
//! its own SQLite file unless the module says otherwise) and talks HTTP to
//! it. Grouped by area: health, pages, page actions (forms), live streams,
//! the queues API, the jobs API, and the other deployments (Redis,
//! PostgreSQL).

mod actions;
mod alerts;
mod audit;
mod auth;
mod auth_methods;
mod bullmq;
mod bullmq_flows;
mod bullmq_latency;
mod bullmq_schedulers;
mod bullnode;
mod cache_page;
mod cluster;
mod errors;
mod faults;
mod fleet;
mod health;
mod helpers;
mod history_charts;
mod jobs;
mod live;
mod metrics;
mod migrations;
mod pages;
mod postgres;
mod queues;
mod ratelimits;
mod redis;
mod redis_page;
mod scale;
mod schedules;
mod search;
mod security;
mod sessions;
mod tokens;
mod users;
mod users_page;
mod workers;
