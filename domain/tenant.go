package domain

import "time"

// Tenant is rebuilt from the tenant's stream: its name and the policy in
// force.
type Tenant struct {
	ID        string
	Name      string
	Policy    Policy
	CreatedAt time.Time
	Version   int64
}

// Apply evolves t by one event of its stream; see User.Apply for Version.
func (t *Tenant) Apply(e Event, at time.Time) {
	switch e := e.(type) {
	case TenantCreated:
		t.ID = e.TenantID
		t.Name = e.Name
		t.Policy = DefaultPolicy()
		t.CreatedAt = at
	case PolicyChanged:
		t.Policy = e.Policy.clone().withVisibility()
	}
	t.Version++
}

// CreateTenant decides the creation of a tenant, which starts under
// DefaultPolicy without a PolicyChanged event.
func CreateTenant(tenantID, name string) ([]Event, error) {
	if tenantID == "" {
		return nil, invalid("tenant_id", "must not be empty")
	}
	name, err := normalizeName("name", name, true)
	if err != nil {
		return nil, err
	}
	return []Event{TenantCreated{TenantID: tenantID, Name: name}}, nil
}

// ChangePolicy decides replacing current by next; (nil, nil) when they are
// equal, so that a repeated PUT appends nothing.
func ChangePolicy(current, next Policy) ([]Event, error) {
	if err := next.Validate(); err != nil {
		return nil, err
	}
	if current.Equal(next) {
		return nil, nil
	}
	return []Event{PolicyChanged{Policy: next.clone()}}, nil
}

// clone copies MaxAssignees so an event or state never shares it with the
// caller's policy.
func (p Policy) clone() Policy {
	if p.MaxAssignees != nil {
		n := *p.MaxAssignees
		p.MaxAssignees = &n
	}
	if p.MaxCustomersPerUser != nil {
		n := *p.MaxCustomersPerUser
		p.MaxCustomersPerUser = &n
	}
	return p
}
