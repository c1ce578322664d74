/**
 * @packageDocumentation
 * Group membership with agreed views and totally ordered delivery (the role Spread plays for Wackamole).
 */
export {};
