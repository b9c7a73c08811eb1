package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/killfeed/killfeed/universe"
)

// Discord's limits on a message's embeds, in characters.
const (
	discordMaxEmbeds      = 10
	discordMaxTitle       = 256
	discordMaxDescription = 4096
	discordMaxFields      = 25
	discordMaxFieldName   = 256
	discordMaxFieldValue  = 1024
	discordMaxFooter      = 2048
	discordMaxAuthor      = 256
	discordMaxTotal       = 6000 // every embed of a message together
	discordMaxContent     = 2000
)

// Embed colours.
const (
	colourKill    = 0x2ECC71 // the filter's entity was on the killing side
	colourLoss    = 0xE74C3C // the filter's entity was the victim
	colourNeutral = 0x5865F2 // the filter names no entity
)

// discordMessage is the body of a Discord webhook execution.
type discordMessage struct {
	Content string         `json:"content,omitempty"`
	Embeds  []discordEmbed `json:"embeds,omitempty"`
}

type discordEmbed struct {
	Title       string         `json:"title,omitempty"`
	URL         string         `json:"url,omitempty"`
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Timestamp   string         `json:"timestamp,omitempty"`
	Author      *discordAuthor `json:"author,omitempty"`
	Thumbnail   *discordImage  `json:"thumbnail,omitempty"`
	Fields      []discordField `json:"fields,omitempty"`
	Footer      *discordFooter `json:"footer,omitempty"`
}

type discordAuthor struct {
	Name    string `json:"name"`
	URL     string `json:"url,omitempty"`
	IconURL string `json:"icon_url,omitempty"`
}

type discordImage struct {
	URL string `json:"url"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

type discordFooter struct {
	Text string `json:"text"`
}

// size is what the embed counts against discordMaxTotal.
func (e *discordEmbed) size() int {
	n := utf8.RuneCountInString(e.Title) + utf8.RuneCountInString(e.Description)
	if e.Author != nil {
		n += utf8.RuneCountInString(e.Author.Name)
	}
	if e.Footer != nil {
		n += utf8.RuneCountInString(e.Footer.Text)
	}
	for _, f := range e.Fields {
		n += utf8.RuneCountInString(f.Name) + utf8.RuneCountInString(f.Value)
	}
	return n
}

// party is a victim or an attacker, with the names enrichment adds when
// they are there.
type party struct {
	CharacterID       int64  `json:"character_id"`
	CharacterName     string `json:"character_name"`
	CorporationID     int64  `json:"corporation_id"`
	CorporationName   string `json:"corporation_name"`
	CorporationTicker string `json:"corporation_ticker"`
	AllianceID        int64  `json:"alliance_id"`
	AllianceName      string `json:"alliance_name"`
	AllianceTicker    string `json:"alliance_ticker"`
	FactionID         int64  `json:"faction_id"`
	FactionName       string `json:"faction_name"`
	ShipTypeID        int64  `json:"ship_type_id"`
	ShipTypeName      string `json:"ship_type_name"`
	FinalBlow         bool   `json:"final_blow"`
}

// killView is what an embed shows of a killmail.
type killView struct {
	KillmailID      int64    `json:"killmail_id"`
	KillmailTime    string   `json:"killmail_time"`
	SolarSystemID   int64    `json:"solar_system_id"`
	SolarSystemName string   `json:"solar_system_name"`
	RegionName      string   `json:"region_name"`
	Security        *float64 `json:"security"`
	Victim          party    `json:"victim"`
	Attackers       []party  `json:"attackers"`
	Zkb             *struct {
		TotalValue *float64 `json:"totalValue"`
		Labels     []string `json:"labels"`
	} `json:"zkb"`
}

// who is a party's name and ticker, or its corporation's or faction's
// when it has no character, falling back to ids when names are absent.
func (p party) who() string {
	name := p.CharacterName
	switch {
	case name != "":
	case p.CharacterID != 0:
		name = "Character " + strconv.FormatInt(p.CharacterID, 10)
	case p.CorporationName != "":
		name = p.CorporationName
	case p.CorporationID != 0:
		name = "Corporation " + strconv.FormatInt(p.CorporationID, 10)
	case p.FactionName != "":
		name = p.FactionName
	case p.FactionID != 0:
		name = "Faction " + strconv.FormatInt(p.FactionID, 10)
	default:
		name = "Unknown"
	}
	var tick []string
	if p.CorporationTicker != "" {
		tick = append(tick, "["+p.CorporationTicker+"]")
	}
	if p.AllianceTicker != "" {
		tick = append(tick, "<"+p.AllianceTicker+">")
	}
	if len(tick) > 0 {
		name += " " + strings.Join(tick, " ")
	}
	return name
}

func (p party) ship() string {
	switch {
	case p.ShipTypeName != "":
		return p.ShipTypeName
	case p.ShipTypeID != 0:
		return "Type " + strconv.FormatInt(p.ShipTypeID, 10)
	}
	return "unknown ship"
}

// in says whether the party is one of the entities.
func (p party) in(e Entities) bool {
	has := func(ids []int64, id int64) bool { return id != 0 && slices.Contains(ids, id) }
	return has(e.Characters, p.CharacterID) || has(e.Corporations, p.CorporationID) ||
		has(e.Alliances, p.AllianceID) || has(e.Factions, p.FactionID)
}

// colour is green when the filter's entity killed, red when it died,
// neutral when the filter names no entity (or neither side is one).
func (k *killView) colour(e Entities) int {
	if e.Empty() {
		return colourNeutral
	}
	if k.Victim.in(e) {
		return colourLoss
	}
	for _, a := range k.Attackers {
		if a.in(e) {
			return colourKill
		}
	}
	return colourNeutral
}

// formatISK writes a value as 1.25B ISK, 12.50M ISK, 950.00K ISK.
func formatISK(v float64) string {
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}} {
		if v >= u.div {
			return strconv.FormatFloat(v/u.div, 'f', 2, 64) + u.suffix + " ISK"
		}
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " ISK"
}

// truncate cuts s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// discordEmbedOf builds the embed of one killmail (JSON, with names when
// enrichment added them); u supplies the system's name and region when
// they are absent.
func discordEmbedOf(km []byte, e Entities, u *universe.Universe, footer string) (discordEmbed, error) {
	var k killView
	if err := json.Unmarshal(km, &k); err != nil {
		return discordEmbed{}, fmt.Errorf("decode killmail: %w", err)
	}
	system, region, sec := k.SolarSystemName, k.RegionName, k.Security
	if s, ok := u.System(k.SolarSystemID); ok {
		if system == "" {
			system = s.Name
		}
		if region == "" {
			region = s.RegionName
		}
		if sec == nil {
			sec = &s.Security
		}
	}
	if system == "" {
		system = "System " + strconv.FormatInt(k.SolarSystemID, 10)
	}
	where := system
	if sec != nil {
		where += fmt.Sprintf(" (%.1f)", *sec)
	}
	if region != "" {
		where += " · " + region
	}

	v := k.Victim
	em := discordEmbed{
		Title:     truncate(v.ship()+" destroyed in "+system, discordMaxTitle),
		URL:       "https://zkillboard.com/kill/" + strconv.FormatInt(k.KillmailID, 10) + "/",
		Color:     k.colour(e),
		Timestamp: k.KillmailTime,
		Author:    &discordAuthor{Name: truncate(v.who(), discordMaxAuthor)},
		Footer:    &discordFooter{Text: truncate(footer, discordMaxFooter)},
	}
	if v.CharacterID != 0 {
		em.Author.URL = "https://zkillboard.com/character/" + strconv.FormatInt(v.CharacterID, 10) + "/"
		em.Author.IconURL = "https://images.evetech.net/characters/" + strconv.FormatInt(v.CharacterID, 10) + "/portrait?size=64"
	}
	if v.ShipTypeID != 0 {
		em.Thumbnail = &discordImage{URL: "https://images.evetech.net/types/" + strconv.FormatInt(v.ShipTypeID, 10) + "/render?size=128"}
	}
	em.Description = "**" + truncate(v.who(), 100) + "** lost their **" + truncate(v.ship(), 100) +
		"** in **" + truncate(where, 200) + "**."

	field := func(name, value string, inline bool) {
		if len(em.Fields) < discordMaxFields && value != "" {
			em.Fields = append(em.Fields, discordField{
				Name: truncate(name, discordMaxFieldName), Value: truncate(value, discordMaxFieldValue), Inline: inline,
			})
		}
	}
	field("Victim", v.who(), true)
	field("Ship", v.ship(), true)
	field("System", where, true)
	if k.Zkb != nil && k.Zkb.TotalValue != nil {
		field("Value", formatISK(*k.Zkb.TotalValue), true)
	}
	field("Attackers", strconv.Itoa(len(k.Attackers)), true)
	for _, a := range k.Attackers {
		if a.FinalBlow {
			field("Final blow", a.who()+" in "+a.ship(), true)
			break
		}
	}
	if k.Zkb != nil && len(k.Zkb.Labels) > 0 {
		field("Labels", strings.Join(k.Zkb.Labels, ", "), false)
	}
	return em, nil
}

// packEmbeds takes embeds from the front of es for one message: at most
// discordMaxEmbeds and discordMaxTotal characters together (at least one).
func packEmbeds(es []discordEmbed) int {
	total, n := 0, 0
	for n < len(es) && n < discordMaxEmbeds {
		s := es[n].size()
		if n > 0 && total+s > discordMaxTotal {
			break
		}
		total += s
		n++
	}
	return n
}

// missedMessage is the plain message that tells a channel killmails were
// lost.
func missedMessage(n uint64) []byte {
	what := "Some killmails"
	if n > 0 {
		what = "Up to " + strconv.FormatUint(n, 10) + " killmails"
	}
	b, _ := json.Marshal(discordMessage{Content: truncate("⚠️ "+what+
		" were dropped by retention before this webhook could deliver them: killmails matching its filter are missing here.", discordMaxContent)})
	return b
}
