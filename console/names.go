package console

import (
	"context"
	"log/slog"
	nethttp "net/http"
	"regexp"
	"strings"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// uuidText finds the IDs in a rule's message: the domain words its rules
// for the API, where an ID is what a client can use, while a person
// reading the console knows people and customers by name.
var uuidText = regexp.MustCompile(`\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`)

// maxNamedUsers bounds the one-by-one lookups of users past the first
// page of the directory (a tenant with more than maxUsersShown users).
const maxNamedUsers = 20

// namer replaces the IDs of the tenant's users and customers in a text by
// their names; an ID it does not know (an erased customer, another
// tenant's ID) stays as it is.
type namer map[string]string

// namerFor looks up the IDs found in texts: the users' directory and the
// customer list's read model, in a few queries whatever the count.
func (c *Console) namerFor(ctx context.Context, tenant string, texts ...string) (namer, error) {
	n := namer{}
	var ids []string
	seen := map[string]bool{}
	for _, t := range texts {
		for _, id := range uuidText.FindAllString(t, -1) {
			id = strings.ToLower(id)
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return n, nil
	}
	users, err := c.d.Commands.ListUsers(ctx, tenant, commands.UsersFilter{}, nil, maxUsersShown)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if seen[u.ID] {
			n[u.ID] = u.Name
		}
	}
	var rest []string
	for _, id := range ids {
		if _, ok := n[id]; !ok {
			rest = append(rest, id)
		}
	}
	customers, err := c.d.Queries.CustomersByID(ctx, tenant, rest)
	if err != nil {
		return nil, err
	}
	looked := 0
	for _, id := range rest {
		if _, ok := customers[id]; ok {
			if name := customerName(customers, id); name != id {
				n[id] = name
			}
			continue
		}
		if len(users) < maxUsersShown || looked >= maxNamedUsers {
			continue // the directory was read whole, or enough was asked
		}
		looked++
		if u, err := c.d.Commands.GetUser(ctx, tenant, id); err == nil {
			n[id] = u.Name
		}
	}
	return n, nil
}

// name answers s with the IDs it knows replaced by names.
func (n namer) name(s string) string {
	if len(n) == 0 {
		return s
	}
	return uuidText.ReplaceAllStringFunc(s, func(id string) string {
		if name, ok := n[strings.ToLower(id)]; ok {
			return name
		}
		return id
	})
}

// refusalOf is err as the API's mapping words it (Deps.Refusal), with the
// people and customers in its messages named. The naming is best effort:
// a failed lookup leaves the IDs in, it never hides the refusal.
func (c *Console) refusalOf(r *nethttp.Request, err error) (Refusal, bool) {
	ref, ok := c.d.Refusal(err)
	if !ok {
		return ref, false
	}
	s, signedIn := sessionOf(r.Context())
	if !signedIn {
		return ref, true
	}
	texts := []string{ref.Detail}
	for _, e := range ref.Errors {
		texts = append(texts, e.Detail)
	}
	n, nerr := c.namerFor(r.Context(), s.TenantID, texts...)
	if nerr != nil {
		c.d.Log.WarnContext(r.Context(), "console: naming a refusal", slog.String("error", nerr.Error()))
		return ref, true
	}
	ref.Detail = n.name(ref.Detail)
	if len(ref.Errors) > 0 {
		errs := make([]domain.PairError, len(ref.Errors))
		copy(errs, ref.Errors)
		for i := range errs {
			errs[i].Detail = n.name(errs[i].Detail)
		}
		ref.Errors = errs
	}
	return ref, true
}
