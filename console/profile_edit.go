package console

import (
	nethttp "net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// profileEdit is the profile form's values: the customer's own, or after
// a refusal what the user typed. Version is the stream version the form
// was filled from, sent back as the command's If-Match, so a save over
// someone else's later change is refused (version_mismatch), never lost.
// The form also carries the values it was filled from (orig_*), so that
// only the fields the user changed are sent, as a PATCH would send them:
// after a conflict, saving again applies the user's changes without
// undoing the other change in the fields the user left alone.
type profileEdit struct {
	FirstName, LastName, Email, Phone, Title, ExternalID string
	Version                                              int64
}

func editOf(cu commands.CustomerView) profileEdit {
	return profileEdit{FirstName: cu.FirstName, LastName: cu.LastName, Email: cu.Email, Phone: cu.Phone,
		Title: cu.Title, ExternalID: cu.ExternalID, Version: cu.Version}
}

// errBadVersion is a profile form without the version it was filled from.
var errBadVersion = &domain.ValidationError{Field: "version", Detail: "the form lacks the customer's version; reload the page"}

// editProfile saves the profile form: UpdateCustomer with the changed
// fields, as PATCH /v1/customers/{id} with If-Match does. A refusal shows
// the current profile above and keeps the user's changes in the form, now
// on the current version: saving again then applies them deliberately.
func (c *Console) editProfile(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	f := r.PostForm
	typed := profileEdit{FirstName: f.Get("first_name"), LastName: f.Get("last_name"), Email: f.Get("email"),
		Phone: f.Get("phone"), Title: f.Get("title"), ExternalID: f.Get("external_id")}
	// changed names the fields the user edited: a field is in the patch
	// only when it differs from the value the form was filled with.
	changed := func(name, v string) *string {
		if _, sent := f["orig_"+name]; sent && f.Get("orig_"+name) == v {
			return nil
		}
		return &v
	}
	patch := commands.ProfilePatch{FirstName: changed("first_name", typed.FirstName), LastName: changed("last_name", typed.LastName),
		Email: changed("email", typed.Email), Phone: changed("phone", typed.Phone), Title: changed("title", typed.Title),
		ExternalID: changed("external_id", typed.ExternalID)}
	var err error
	version, perr := strconv.ParseInt(strings.TrimSpace(f.Get("version")), 10, 64)
	var res commands.CustomerResult
	if perr != nil || version < 0 {
		err = errBadVersion
	} else {
		m := c.meta(s)
		m.IfMatch = []int64{version}
		res, err = c.d.Commands.UpdateCustomer(r.Context(), m, id, patch)
	}
	if err != nil {
		c.refused(w, r, err, "profile", func(v view) (string, view, error) {
			name, v, err := c.profilePage(r, s, v)
			if err != nil {
				return name, v, err
			}
			d := v.Data.(profileData)
			// The current profile, with the user's changes over it.
			edit := d.Edit
			for _, fv := range []struct {
				p   *string
				dst *string
			}{{patch.FirstName, &edit.FirstName}, {patch.LastName, &edit.LastName}, {patch.Email, &edit.Email},
				{patch.Phone, &edit.Phone}, {patch.Title, &edit.Title}, {patch.ExternalID, &edit.ExternalID}} {
				if fv.p != nil {
					*fv.dst = *fv.p
				}
			}
			d.Edit = edit
			v.Data = d
			return name, v, nil
		})
		return
	}
	redirectAfter(w, r, "/customers/"+res.ID+"#profile", res.Position, "profile")
}
