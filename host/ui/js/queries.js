// Every GraphQL operation the dashboard sends. Each is a plain template
// string without substitutions: the test suite reads this file and
// validates every operation against graphql/schema.graphql, so a schema
// change that would break the dashboard fails CI.

export const LOGIN = `mutation Login($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { accessToken refreshToken user { id email } }
}`;

export const REGISTER = `mutation Register($email: String!, $password: String!, $name: String) {
  register(input: { email: $email, password: $password, name: $name }) {
    accessToken refreshToken user { id email name } organization { id name }
  }
}`;

export const REFRESH = `mutation Refresh($refreshToken: String!) {
  refresh(refreshToken: $refreshToken) { accessToken refreshToken }
}`;

export const LOGOUT = `mutation Logout($refreshToken: String!) { logout(refreshToken: $refreshToken) }`;

export const ME = `query Me {
  me { id email name memberships { role organization { id name personal } } }
}`;

export const PROJECTS = `query Projects($organizationId: ID!, $first: Int, $after: String) {
  projects(organizationId: $organizationId, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id name description } }
  }
}`;

export const CREATE_PROJECT = `mutation CreateProject($organizationId: ID!, $name: String!, $description: String) {
  createProject(input: { organizationId: $organizationId, name: $name, description: $description }) { id name }
}`;

export const UPDATE_PROJECT = `mutation UpdateProject($id: ID!, $name: String, $description: String) {
  updateProject(id: $id, input: { name: $name, description: $description }) { id name description }
}`;

export const DELETE_PROJECT = `mutation DeleteProject($id: ID!) { deleteProject(id: $id) }`;

export const PROJECT = `query Project($id: ID!) {
  project(id: $id) { id name description organizationId reviewSettings { mode reviewersPerDocument } }
}`;

export const DOCUMENTS = `query Documents($id: ID!, $after: String) {
  project(id: $id) {
    id
    documents(first: 100, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id filename status error pageCount sizeBytes job { id state progress } } }
    }
  }
}`;

export const UPLOAD_DOCUMENT = `mutation UploadDocument($projectId: ID!, $file: Upload!) {
  uploadDocument(projectId: $projectId, file: $file) { id filename status job { id } }
}`;

export const DELETE_DOCUMENT = `mutation DeleteDocument($id: ID!) { deleteDocument(id: $id) }`;

export const JOB_UPDATED = `subscription JobUpdated($id: ID!) {
  jobUpdated(id: $id) { id state progress error documentId }
}`;

export const FORMS = `query Forms($id: ID!) {
  project(id: $id) {
    id
    forms {
      id name description
      activeVersion { id number }
      versions { id number status programHash feedback error createdAt fields }
    }
  }
}`;

export const CREATE_FORM = `mutation CreateForm($projectId: ID!, $name: String!, $description: String, $fields: [FieldInput!]!) {
  createForm(input: { projectId: $projectId, name: $name, description: $description, fields: $fields }) {
    id name latestVersion { id number status }
  }
}`;

export const UPDATE_FORM = `mutation UpdateForm($id: ID!, $name: String, $description: String, $fields: [FieldInput!]!) {
  updateForm(id: $id, input: { name: $name, description: $description, fields: $fields }) {
    id latestVersion { id number status }
  }
}`;

export const FORM_VERSION = `query FormVersion($id: ID!) {
  formVersion(id: $id) { id number status programHash program fields feedback error }
}`;

export const APPROVE_FORM_VERSION = `mutation ApproveFormVersion($id: ID!) {
  approveFormVersion(id: $id) { id status programHash }
}`;

export const REGENERATE_FORM_VERSION = `mutation RegenerateFormVersion($id: ID!, $feedback: String!) {
  regenerateFormVersion(id: $id, feedback: $feedback) { id number status }
}`;

export const START_EXTRACTION = `mutation StartExtraction($projectId: ID!, $formVersionId: ID!, $documentIds: [ID!]) {
  startExtraction(input: { projectId: $projectId, formVersionId: $formVersionId, documentIds: $documentIds }) {
    id state
  }
}`;

export const CANCEL_JOB = `mutation CancelJob($id: ID!) { cancelJob(id: $id) { id state } }`;

export const RETRY_JOB = `mutation RetryJob($id: ID!) { retryJob(id: $id) { id state } }`;

export const EXTRACTION_RUNS = `query ExtractionRuns($id: ID!) {
  project(id: $id) {
    id
    extractionRuns(first: 5) {
      id formVersionId documentCount createdAt
      job {
        id state progress error cancelRequested
        llmUsage { calls inputTokens outputTokens costUsd }
        children { id state progress error documentId }
      }
    }
  }
}`;

export const EXTRACTION_JOB = `query ExtractionJob($id: ID!) {
  job(id: $id) {
    id state progress error
    llmUsage { calls inputTokens outputTokens costUsd }
    children { id state progress error documentId }
  }
}`;

export const REVIEW = `query Review($documentId: ID!, $formVersionId: ID!) {
  review(documentId: $documentId, formVersionId: $formVersionId) {
    id status documentId blind
    extractions { reviewer { id email } values }
    values {
      path value state source extracted confidence
      evidence { quote page start end grounding boxes { page x y width height } }
      decisions { reviewer { email } verdict value note at }
    }
  }
}`;

export const DOCUMENT_PAGE = `query DocumentPage($id: ID!, $page: Int!, $width: Int!) {
  document(id: $id) {
    id filename pageCount
    layout { number width height }
    pageImageUrl(page: $page, width: $width)
  }
}`;

export const VERIFY_VALUE = `mutation VerifyValue($documentId: ID!, $formVersionId: ID!, $path: String!,
                     $verdict: Verdict!, $value: JSON, $quote: String, $note: String) {
  verifyValue(documentId: $documentId, formVersionId: $formVersionId, input: {
      path: $path, verdict: $verdict, value: $value, quote: $quote, note: $note }) {
    path value state source
  }
}`;

export const SUBMIT_REVIEWER_VALUES = `mutation SubmitReviewerValues($documentId: ID!, $formVersionId: ID!, $values: JSON!, $submit: Boolean) {
  submitReviewerValues(documentId: $documentId, formVersionId: $formVersionId, values: $values, submit: $submit) {
    status
  }
}`;

export const RESOLVE_VALUE = `mutation ResolveValue($documentId: ID!, $formVersionId: ID!, $path: String!, $value: JSON, $note: String!) {
  resolveValue(documentId: $documentId, formVersionId: $formVersionId, path: $path, value: $value, note: $note) {
    path value state source
  }
}`;

export const COMPLETE_REVIEW = `mutation CompleteReview($documentId: ID!, $formVersionId: ID!) {
  completeReview(documentId: $documentId, formVersionId: $formVersionId) { status }
}`;

export const REOPEN_REVIEW = `mutation ReopenReview($documentId: ID!, $formVersionId: ID!, $note: String!) {
  reopenReview(documentId: $documentId, formVersionId: $formVersionId, note: $note) { status }
}`;

export const REVIEW_UPDATED = `subscription ReviewUpdated($projectId: ID!) {
  reviewUpdated(projectId: $projectId) { id status documentId formVersionId }
}`;

export const RESULTS = `query Results($projectId: ID!, $formVersionId: ID!, $after: String) {
  results(projectId: $projectId, formVersionId: $formVersionId, first: 50, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id
        document { id filename }
        values { path value status confidence grounding ungrounded }
        review { status values { path value state source } }
      }
    }
  }
}`;

export const EXPORT_RESULTS = `mutation ExportResults($projectId: ID!, $formVersionId: ID!, $format: ExportFormat!, $values: ExportValues) {
  exportResults(projectId: $projectId, formVersionId: $formVersionId, format: $format, values: $values) {
    downloadUrl codebookDownloadUrl
  }
}`;

export const EVALUATION = `query Evaluation($projectId: ID!, $formVersionId: ID!) {
  evaluation(projectId: $projectId, formVersionId: $formVersionId) {
    overall { support correct accuracy }
    fields { path comparator support correct accuracy }
  }
}`;

export const PLUGINS = `query Plugins { plugins { id version kind builtIn description } }`;

export const PROJECT_SETTINGS = `query ProjectSettings($id: ID!) {
  project(id: $id) {
    id organizationId
    plugins {
      converter { id version } extractor { id version } llmAdapter { id version }
      llmConfig llmSecretNames
    }
    llmUsage { calls cachedCalls failedCalls inputTokens outputTokens costUsd }
  }
}`;

export const CONFIGURE_PROJECT_PLUGINS = `mutation ConfigureProjectPlugins($projectId: ID!, $converter: String, $extractor: String,
                                 $llmAdapter: String, $llmConfig: JSON, $llmSecrets: JSON) {
  configureProjectPlugins(projectId: $projectId, input: {
      converter: $converter, extractor: $extractor,
      llmAdapter: $llmAdapter, llmConfig: $llmConfig, llmSecrets: $llmSecrets }) {
    converter { id version } extractor { id version } llmAdapter { id version }
  }
}`;

export const CHECK_LLM_CONNECTION = `mutation CheckLlmConnection($projectId: ID!) {
  checkLlmConnection(projectId: $projectId) { text model }
}`;

export const ADD_MEMBER = `mutation AddMember($organizationId: ID!, $email: String!, $role: Role!) {
  addMember(organizationId: $organizationId, email: $email, role: $role) { role user { id email } }
}`;

export const CREATE_API_KEY = `mutation CreateApiKey($organizationId: ID!, $name: String!, $role: Role!) {
  createApiKey(organizationId: $organizationId, name: $name, role: $role) { secret apiKey { id name role } }
}`;

export const ORGANIZATION_MEMBERS = `query OrganizationMembers($id: ID!) {
  organization(id: $id) { id name members { role createdAt user { id email name } } }
}`;

export const ORGANIZATION_API_KEYS = `query OrganizationApiKeys($id: ID!) {
  organization(id: $id) { id apiKeys { id name role prefix createdAt lastUsedAt revoked } }
}`;

export const REMOVE_MEMBER = `mutation RemoveMember($organizationId: ID!, $userId: ID!) {
  removeMember(organizationId: $organizationId, userId: $userId)
}`;

export const REVOKE_API_KEY = `mutation RevokeApiKey($id: ID!) { revokeApiKey(id: $id) { id } }`;
