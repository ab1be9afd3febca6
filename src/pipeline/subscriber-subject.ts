/**
 * The subject JSON of an applicant's certificates (the input of src/pki/subject.ts
 * parseSubscriberSubject), built from an `applications` row. Shared by the IA (card
 * personalisation) and the desks (the issuability dry run), so both see the very same subject.
 */
/**
 * The subject of an applicant's certificates, from the registered application (NFC already): an
 * `applications` row, or the columns of a validated form (application-input.ts applicationColumns).
 */
export function subscriberSubjectJson(app: Record<string, unknown>): Record<string, unknown> {
  const org = app.organization_latin || app.organization_kanji
    ? { latin: app.organization_latin ?? undefined, kanji: app.organization_kanji ?? undefined }
    : undefined;
  return {
    hcRole: app.manager_role ?? app.qualification,
    subscriberId: app.subscriber_id,
    name: { latin: app.name_latin, kanji: app.name_kanji },
    ...(org ? { organization: org } : {}),
  };
}
