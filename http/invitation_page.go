package http

import (
	"bytes"
	"errors"
	"html/template"
	nethttp "net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
)

// The invited client's page (GET /invitations/{token}): the team, names
// and e-mails, and an Accept button, a form POST to the same address that
// runs AcceptInvitation. The token in the path is the only credential, so
// a forged cross-site POST would have to know it already; the page is not
// cached and sends no Referer, which would carry the token elsewhere.
var invitationPage = template.Must(template.New("invitation").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
li { margin: .3rem 0; } .lead { font-size: .8rem; color: #555; }
button { font-size: 1rem; padding: .5rem 1.5rem; }
</style>
</head>
<body>
{{- if .Accepted}}
<h1>Welcome{{with .Page.FirstName}}, {{.}}{{end}}</h1>
<p>Your invitation is accepted. Your team will be in touch; you can write to them directly:</p>
{{- else if .Page}}
<h1>Hello{{with .Page.FirstName}} {{.}}{{end}}</h1>
<p>You are invited to work with this team:</p>
{{- else}}
<h1>Invitation not found</h1>
<p>This invitation link is unknown or has been used already.</p>
{{- end}}
{{- with .Page}}
<ul>
{{- range .Team}}
<li>{{.Name}} &lt;<a href="mailto:{{.Email}}">{{.Email}}</a>&gt;{{if .Lead}} <span class="lead">team lead</span>{{end}}</li>
{{- end}}
</ul>
{{- end}}
{{- if and .Page (not .Accepted)}}
<form method="post">
<button type="submit">Accept</button>
</form>
{{- end}}
</body>
</html>
`))

type invitationPageData struct {
	Title    string
	Page     *commands.InvitationPage
	Accepted bool
}

func (s *Server) showInvitation(w nethttp.ResponseWriter, r *nethttp.Request) error {
	token := strings.TrimSpace(chi.URLParam(r, "token"))
	page, err := s.cmd.GetInvitation(r.Context(), token)
	if errors.Is(err, commands.ErrNotFound) {
		invitationNotFound(w, r)
		return nil
	}
	if err != nil {
		return err
	}
	writeInvitationPage(w, nethttp.StatusOK, invitationPageData{Title: "Your invitation", Page: &page})
	return nil
}

// acceptInvitationForm is the page's Accept button.
func (s *Server) acceptInvitationForm(w nethttp.ResponseWriter, r *nethttp.Request) error {
	token := strings.TrimSpace(chi.URLParam(r, "token"))
	page, err := s.cmd.GetInvitation(r.Context(), token)
	if err == nil {
		_, err = s.cmd.AcceptInvitation(r.Context(), commands.Meta{}, token)
	}
	if errors.Is(err, commands.ErrNotFound) {
		invitationNotFound(w, r)
		return nil
	}
	if err != nil {
		return err
	}
	writeInvitationPage(w, nethttp.StatusOK, invitationPageData{Title: "Invitation accepted", Page: &page, Accepted: true})
	return nil
}

// invitationNotFound answers 404: a page for a browser, a problem for
// anything that does not ask for HTML.
func invitationNotFound(w nethttp.ResponseWriter, r *nethttp.Request) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		writeInvitationPage(w, nethttp.StatusNotFound, invitationPageData{Title: "Invitation not found"})
		return
	}
	writeProblem(w, newProblem(nethttp.StatusNotFound, "not_found", "unknown or used invitation"))
}

func writeInvitationPage(w nethttp.ResponseWriter, status int, d invitationPageData) {
	var b bytes.Buffer
	if err := invitationPage.Execute(&b, d); err != nil {
		nethttp.Error(w, "internal error", nethttp.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
