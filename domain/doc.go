// Package domain holds the rules of the assignment ledger: which users may
// serve which customers under a tenant's policy, and the events that record
// every change.
//
// Everything here is pure: decisions are plain functions over plain structs
// that return the events to append, or a typed error, and never mutate their
// inputs. State is rebuilt by applying events (Customer.Apply, User.Apply,
// Tenant.Apply), so the same code answers "what is the team now" and "what
// was it on 3 March". IDs and times are passed in, never generated here, which
// keeps decisions deterministic and replay exact.
//
// Errors come in three kinds so that callers can map them to HTTP statuses in
// one place: *ValidationError (bad input, 400), *ForbiddenError (role not
// allowed, 403) and *RuleError (a business rule refuses the command, 409,
// carrying a stable Code).
package domain
