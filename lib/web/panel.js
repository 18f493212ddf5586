// @ts-check
// The live panel (placeholder while the panel is written).
