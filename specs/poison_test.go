package specs_test

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
)

var _ = Describe("a killmail no client could decode", func() {
	poisons := map[string]struct{ body, answer string }{
		"a string that is not UTF-8": {
			"{\"killmail_id\":123456789019,\"solar_system_id\":30000142,\"victim\":{\"items\":[{},{\"x\":\"\xff\xfe\"}]}}",
			"body.victim.items[1].x: string is not valid UTF-8"},
		"5,000 nested arrays": {
			`{"killmail_id":123456789020,"solar_system_id":30000142,"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`,
			"body.x" + strings.Repeat("[0]", 31) + ": nested deeper than 32 levels"},
		"an element of an array body": {
			"[{\"killmail_id\":123456789021,\"solar_system_id\":30000142},{\"killmail_id\":123456789022,\"solar_system_id\":30000142,\"k\xc3\":1}]",
			`body[1]["k\xc3"]: string is not valid UTF-8; nothing was stored`},
	}

	It("is refused with a 400 naming its path, and every protocol's subscribers keep working", func(ctx SpecContext) {
		base := startKillfeed(app.Config{}).URL()
		native := wsDial(ctx, base, 0)
		native.send(ctx, `{"type":"subscribe","systems":[30000142]}`)
		Expect(native.next(ctx).Type).To(Equal("subscribed"))
		phx := &phxClient{dialWS(ctx, base, "/socket/websocket?vsn=2.0.0")}
		phx.send(ctx, "1", "1", "system:30000142", "phx_join", "{}")
		Expect(phx.reply(ctx, "system:30000142")).To(Equal("ok"))
		zkill := &zkillClient{dialWS(ctx, base, "/websocket/")}
		zkill.send(ctx, `{"action":"sub","channel":"system:30000142"}`)
		Expect(zkill.sync(ctx)).To(BeEmpty())
		status, _ := listenServed(ctx, listenURL(base, "/listen.php", "poison-bot", "ttw", "1"))
		Expect(status).To(Equal(http.StatusOK))
		Expect(get(ctx, pollURL(base, "/api/killfeed", "poison-poller", []int64{jita})).Status).To(Equal(http.StatusOK))

		for name, p := range poisons {
			r := post(ctx, base+"/api/killmails", []byte(p.body))
			Expect(r.Status).To(Equal(http.StatusBadRequest), name)
			Expect(r.Error()).To(Equal(p.answer), name)
		}

		ids := wsInsert(ctx, base, jita, 2)
		// Every frame is valid UTF-8 and the good killmails come through.
		for _, id := range ids {
			typ, b, err := native.c.Read(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(typ).To(Equal(websocket.MessageText))
			Expect(utf8.Valid(b)).To(BeTrue())
			Expect(string(b)).To(ContainSubstring(fmt.Sprintf(`"event_id":%d`, id)))
			_, _, eventID := phx.push(ctx)
			Expect(eventID).To(Equal(id))
		}
		for range ids {
			obj, b := zkill.next(ctx)
			Expect(utf8.Valid(b)).To(BeTrue())
			Expect(obj["solar_system_id"]).To(BeEquivalentTo("30000142"))
		}
		for range ids {
			status, pkg := listenServed(ctx, listenURL(base, "/listen.php", "poison-bot", "ttw", "1"))
			Expect(status).To(Equal(http.StatusOK))
			Expect(pkg.Package).NotTo(BeNil())
			Expect(pkg.Package.Killmail["solar_system_id"]).To(BeEquivalentTo("30000142"))
		}
		r := get(ctx, pollURL(base, "/api/killfeed", "poison-poller", []int64{jita}))
		Expect(utf8.Valid(r.Body)).To(BeTrue())
		var poll pollAnswer
		r.JSON(&poll)
		Expect(poll.IDs()).To(Equal(ids))
		// A new client resuming from the start sees only what decodes.
		fresh := wsDial(ctx, base, 0)
		fresh.send(ctx, `{"type":"subscribe","systems":[30000142],"since":0}`)
		Expect(fresh.next(ctx).Type).To(Equal("subscribed"))
		Expect(fresh.killmails(ctx, 2)).To(Equal(ids))
	}, SpecTimeout(60*time.Second))
})
