// Package service is the root of the comments service module. The code is
// in api, store, metrics, config, server and cmd/comments; this package's
// tests check how the service is packaged (the Dockerfile and .dockerignore),
// since no Docker engine runs where the tests do.
package service
