package projections

import (
	"context"
	"fmt"
	"time"
)

// Notification types.
const (
	NotificationAssigned   = "assigned"
	NotificationUnassigned = "unassigned"
	NotificationMadeLead   = "made_lead"
	NotificationHandedOver = "handed_over"
)

// Notification is what a user was told.
type Notification struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	CustomerID string    `json:"customer_id"`
	At         time.Time `json:"at"`
	Read       bool      `json:"read"`
}

type notifications struct{}

func (notifications) name() string     { return Notifications }
func (notifications) tables() []string { return []string{"notifications"} }

// qNotificationsSelect derives notifications from events in SQL, shared by
// the live handler and a rebuild. The id "<position>-<user id>" is stable
// across rebuilds, so read marks (notification_reads) survive them.
const qNotificationsSelect = `INSERT INTO notifications (id, tenant_id, user_id, type, customer_id, at, position)
SELECT e.position::text || '-' || n.user_id, e.tenant_id, n.user_id::uuid, n.type, (e.data->>'customer_id')::uuid,
       e.recorded_at, e.position
FROM events e
CROSS JOIN LATERAL (
    SELECT e.data->>'user_id', 'assigned' WHERE e.type = 'UserAssigned'
    UNION ALL SELECT e.data->>'user_id', 'unassigned' WHERE e.type = 'UserUnassigned'
    UNION ALL SELECT e.data->>'user_id', 'made_lead' WHERE e.type = 'TeamLeadChanged'
    UNION ALL SELECT e.data->>'with_user_id', 'handed_over' WHERE e.type = 'TeamMemberReplaced'
    UNION ALL SELECT e.data->>'user_id', 'unassigned' WHERE e.type = 'TeamMemberReplaced'
) AS n(user_id, type)
WHERE e.type IN ('UserAssigned', 'UserUnassigned', 'TeamLeadChanged', 'TeamMemberReplaced') `

const (
	qNotificationsApply = qNotificationsSelect + `AND e.position = $1 ON CONFLICT (id) DO NOTHING`
	qNotificationsBulk  = qNotificationsSelect + `AND e.position > $1 AND e.position <= $2
  AND e.transaction_id < $3::text::xid8 ON CONFLICT (id) DO NOTHING`
)

func (notifications) apply(ctx context.Context, tx queryer, ev *envelope) error {
	switch ev.Type {
	case "UserAssigned", "UserUnassigned", "TeamLeadChanged", "TeamMemberReplaced":
	default:
		return nil
	}
	if _, err := tx.ExecContext(ctx, qNotificationsApply, ev.Position); err != nil {
		return fmt.Errorf("write notifications: %w", err)
	}
	return nil
}

func (notifications) bulkSQL() string { return qNotificationsBulk }

const (
	qNotificationsList = `SELECT n.id, n.type, n.customer_id::text, n.at, r.notification_id IS NOT NULL
FROM notifications n
LEFT JOIN notification_reads r ON r.user_id = n.user_id AND r.notification_id = n.id
WHERE n.tenant_id = $1 AND n.user_id = $2
ORDER BY n.position DESC, n.id
LIMIT $3`

	qNotificationsUnread = `SELECT count(*) FROM notifications n
WHERE n.tenant_id = $1 AND n.user_id = $2
  AND NOT EXISTS (SELECT 1 FROM notification_reads r WHERE r.user_id = n.user_id AND r.notification_id = n.id)`

	// Only the user's own notifications can be marked: other ids match no
	// row of theirs and are ignored.
	qNotificationsMarkRead = `INSERT INTO notification_reads (tenant_id, user_id, notification_id)
SELECT n.tenant_id, n.user_id, n.id FROM notifications n
WHERE n.tenant_id = $1 AND n.user_id = $2 AND n.id = ANY($3::text[])
ON CONFLICT DO NOTHING`
)

// Notifications returns how many of the user's notifications are unread and
// the newest limit of them.
func (q *Queries) Notifications(ctx context.Context, tenantID, userID string, limit int) (int, []Notification, error) {
	limit = clampLimit(limit)
	items := []Notification{}
	if !isUUID(userID) {
		return 0, items, nil
	}
	var unread int
	if err := q.pool.QueryRow(ctx, qNotificationsUnread, tenantID, userID).Scan(&unread); err != nil {
		return 0, nil, fmt.Errorf("count unread notifications: %w", err)
	}
	rows, err := q.pool.Query(ctx, qNotificationsList, tenantID, userID, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n Notification
		if err := rows.Scan(&n.ID, &n.Type, &n.CustomerID, &n.At, &n.Read); err != nil {
			return 0, nil, fmt.Errorf("list notifications: %w", err)
		}
		n.At = n.At.UTC()
		items = append(items, n)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("list notifications: %w", err)
	}
	return unread, items, nil
}

// MarkRead marks the user's notifications among ids as read. Ids of other
// users' notifications, and unknown ids, are ignored.
func (q *Queries) MarkRead(ctx context.Context, tenantID, userID string, ids []string) error {
	if !isUUID(userID) || len(ids) == 0 {
		return nil
	}
	if _, err := q.pool.Exec(ctx, qNotificationsMarkRead, tenantID, userID, ids); err != nil {
		return fmt.Errorf("mark notifications read: %w", err)
	}
	return nil
}
