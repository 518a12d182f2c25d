//! Redress: case management for moderation appeals and complaints.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod mail;
pub mod security;
pub mod server;
pub mod services;
pub mod store;
pub mod transfer;
pub mod validate;
pub mod web;
